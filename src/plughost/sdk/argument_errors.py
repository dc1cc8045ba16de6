"""Arguments that do not fit a handler, in a user's words: `argument 'a': expected an integer, got 'two'`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

# pydantic error types that mean "the value is of the wrong type", and what was expected instead
EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def describe_argument_errors(exc: ValidationError) -> str:
    """Every problem of a call's arguments, joined by "; " (one line)."""
    return "; ".join(_problem(error) for error in exc.errors())


def _problem(error: Any) -> str:
    loc = list(error.get("loc") or ())
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "invalid value"))
    if not loc:
        expected = EXPECTED.get(kind)
        return f"arguments: expected {expected} of named arguments" if expected else f"arguments: {_lower(message)}"
    name = f"'{loc[0]}" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:]) + "'"
    if kind == "missing":
        return f"missing argument {name}"
    if kind == "extra_forbidden":
        return f"unknown argument {name}"
    if kind in EXPECTED:
        return f"argument {name}: expected {EXPECTED[kind]}, got {_shown(error.get('input'))}"
    return f"argument {name}: {_lower(message)}"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)[:200]
    except (TypeError, ValueError):
        return repr(value)[:200]


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
