"""Turn a Python function's signature into a pydantic argument model and a JSON schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model


def argument_model(func: Callable[..., Any], *, only: Collection[str] | None = None) -> type[BaseModel] | None:
    """A model validating keyword arguments for `func`, or None when it takes none.

    With `only`, just those parameters (the others are filled by the host).
    """
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if only is not None and param.name not in only:
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    if not fields:
        return None
    model_name = f"{getattr(func, '__name__', 'handler')}_args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def json_schema(model: type[BaseModel] | None) -> dict[str, Any]:
    """The JSON schema of an argument model (an empty object schema when there is none)."""
    if model is None:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema
