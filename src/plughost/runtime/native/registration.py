"""`plugin.register` / `plugin.reconfigure`: the config YAML in, metadata and capabilities out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from plughost.runtime.native.envelope import get_ci, get_ci_any

SCHEMA_VERSION = 3
REQUIRED_METADATA = ("Name", "Version", "Author", "GitHubRepository")
BOOL_CAPABILITIES = (
    "model_registrar",
    "model_provider",
    "auth_provider",
    "frontend_auth_provider",
    "frontend_auth_provider_exclusive",
    "scheduler",
    "model_router",
    "executor",
    "request_translator",
    "request_normalizer",
    "request_interceptor",
    "request_lifecycle_plugin",
    "response_translator",
    "response_before_translator",
    "response_after_translator",
    "response_interceptor",
    "response_stream_interceptor",
    "thinking_applier",
    "usage_plugin",
    "command_line_plugin",
    "management_api",
    "bot",  # plughost's own extension
)
VALUE_CAPABILITIES = ("executor_model_scope", "executor_input_formats", "executor_output_formats")


class RegistrationError(Exception):
    """The registration reply cannot be used at all (e.g. an unsupported schema version)."""


def config_yaml(config: Mapping[str, Any], *, enabled: bool, priority: int) -> str:
    """The plugin's config table as YAML, `enabled`/`priority` appended when absent, trailing newline."""
    data = dict(config)
    data.setdefault("enabled", enabled)
    data.setdefault("priority", priority)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text if text.endswith("\n") else text + "\n"


def lifecycle_request(config: Mapping[str, Any], *, enabled: bool, priority: int) -> dict[str, Any]:
    text = config_yaml(config, enabled=enabled, priority=priority)
    return {"config_yaml": base64.b64encode(text.encode()).decode("ascii"), "schema_version": SCHEMA_VERSION}


@dataclass(frozen=True)
class Registration:
    """What `plugin.register` answered, validated."""

    schema_version: int
    metadata: dict[str, Any]
    capabilities: frozenset[str]
    capability_values: dict[str, Any] = field(default_factory=dict)
    inactive_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.inactive_reason is None


def parse_registration(result: Any) -> Registration:
    """Validate a register/reconfigure result; invalid metadata or no capability → inactive with a reason."""
    if not isinstance(result, Mapping):
        result = {}
    raw_version = get_ci(result, "schema_version", 0)
    try:
        schema_version = int(raw_version or 0)
    except (TypeError, ValueError):
        raise RegistrationError(f"schema_version {raw_version!r} is not a number") from None
    if schema_version > SCHEMA_VERSION:
        raise RegistrationError(
            f"plugin schema version {schema_version} is not supported (this host supports up to {SCHEMA_VERSION})"
        )
    schema_version = schema_version or 1
    meta_raw = get_ci(result, "metadata")
    meta_raw = meta_raw if isinstance(meta_raw, Mapping) else {}
    metadata: dict[str, Any] = {
        "Name": _text(get_ci(meta_raw, "Name")),
        "Version": _text(get_ci(meta_raw, "Version")),
        "Author": _text(get_ci(meta_raw, "Author")),
        "GitHubRepository": _text(get_ci(meta_raw, "GitHubRepository")),
        "Logo": _text(get_ci(meta_raw, "Logo")),
        "ConfigFields": _config_fields(get_ci(meta_raw, "ConfigFields")),
    }
    caps_raw = get_ci(result, "capabilities")
    caps_raw = caps_raw if isinstance(caps_raw, Mapping) else {}
    capabilities = frozenset(
        name for name in BOOL_CAPABILITIES if get_ci_any(caps_raw, name, name.replace("_", "")) is True
    )
    if "frontend_auth_provider" not in capabilities:
        capabilities = capabilities - {"frontend_auth_provider_exclusive"}
    values = {name: get_ci_any(caps_raw, name, name.replace("_", "")) for name in VALUE_CAPABILITIES}
    reasons = [f"metadata {key} is blank" for key in REQUIRED_METADATA if not str(metadata[key]).strip()]
    if not capabilities:
        reasons.append("no capability is enabled")
    return Registration(
        schema_version=schema_version,
        metadata=metadata,
        capabilities=capabilities,
        capability_values={k: v for k, v in values.items() if v},
        inactive_reason="; ".join(reasons) or None,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _config_fields(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    fields: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, Mapping):
            enum_values = get_ci(item, "EnumValues") or []
            fields.append(
                {
                    "Name": _text(get_ci(item, "Name")),
                    "Type": _text(get_ci(item, "Type")),
                    "EnumValues": [str(v) for v in enum_values] if isinstance(enum_values, list) else [],
                    "Description": _text(get_ci(item, "Description")),
                }
            )
    return fields
