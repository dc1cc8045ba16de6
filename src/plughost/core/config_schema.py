"""Checking a plugin's configuration against the JSON Schema in its manifest (`config_schema`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plughost.errors import ConfigError

MAX_CONFIG_DEPTH = 32
"""How deeply tables and arrays of a plugin configuration may nest."""
_TOML_INTEGERS = range(-(2**63), 2**63)


@dataclass(frozen=True)
class FieldProblem:
    """One violation: the field's dotted path (`""` for the whole object) and what is wrong."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field or '(config)'}: {self.message}"


class ConfigValidationError(ConfigError):
    """A plugin configuration violates the plugin's `config_schema`; `problems` names each field."""

    def __init__(self, plugin_id: str, problems: list[FieldProblem]) -> None:
        self.plugin_id = plugin_id
        self.problems = problems
        super().__init__(f"configuration of plugin '{plugin_id}' is invalid: " + "; ".join(map(str, problems)))


def config_problems(schema: Mapping[str, Any] | None, config: Mapping[str, Any]) -> list[FieldProblem]:
    """Every way `config` violates `schema` (none without a schema), in field order.

    A schema that is itself invalid is reported as a problem of the whole configuration rather
    than letting anything through unchecked.
    """
    if not schema:
        return []
    from jsonschema import Draft202012Validator, SchemaError, validators

    validator_class = validators.validator_for(schema, default=Draft202012Validator)
    try:
        validator_class.check_schema(dict(schema))
    except SchemaError as exc:
        return [FieldProblem("", f"the plugin's config_schema is not a valid JSON Schema: {exc.message}")]
    validator = validator_class(schema)
    problems = [FieldProblem(_field(error), error.message) for error in validator.iter_errors(dict(config))]
    return sorted(problems, key=lambda p: p.field)


def _field(error: Any) -> str:
    """The dotted path of the offending field; a missing required key is named itself, not its parent."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:  # one error per missing key, each message naming its key
            path.append(str(next((k for k in missing if error.message.startswith(repr(k))), missing[0])))
    return ".".join(path)


def storage_problems(config: Mapping[str, Any]) -> list[FieldProblem]:
    """What TOML cannot store as given (nulls, infinite or NaN floats, integers beyond 64 bits),
    or nesting deeper than `MAX_CONFIG_DEPTH`."""
    problems: list[FieldProblem] = []
    _storable(dict(config), [], problems)
    return problems


def _storable(value: Any, path: list[str], problems: list[FieldProblem]) -> None:
    field = ".".join(path)
    if len(path) > MAX_CONFIG_DEPTH:
        problems.append(FieldProblem(field, f"nested deeper than {MAX_CONFIG_DEPTH} levels"))
    elif isinstance(value, Mapping | list):
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            _storable(item, [*path, str(key)], problems)
    elif value is None:
        problems.append(FieldProblem(field, "null cannot be stored (TOML has no null): leave the key out"))
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append(FieldProblem(field, f"{value} is not a finite number"))
    elif isinstance(value, int) and not isinstance(value, bool) and value not in _TOML_INTEGERS:
        problems.append(FieldProblem(field, "integer out of range (TOML integers are 64-bit)"))


def check_config(plugin_id: str, schema: Mapping[str, Any] | None, config: Mapping[str, Any]) -> None:
    """Raise ConfigValidationError when `config` cannot be stored as TOML or violates `schema`."""
    problems = storage_problems(config) or config_problems(schema, config)
    if problems:
        raise ConfigValidationError(plugin_id, problems)
