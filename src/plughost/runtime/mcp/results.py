"""MCP tools as plughost methods: descriptors, argument checks, results and errors as outcomes.

A tool result becomes an `Outcome` (docs/mcp.md has the table):

- `structuredContent` present: `value` is the structured content (the machine-readable answer);
- else one text block: `value` is its text; no content: `value` is None;
- else (several blocks, images, audio, resources, resource links): `value` is the list of blocks
  as MCP sends them (`{"type": "text", "text"}`, `{"type": "image", "data": base64, "mimeType"}` …);
- `isError: true`: `error` is a `plugin_error` (type `McpToolError`) whose message is the blocks'
  text, `detail["content"]` the blocks.

Failures of the request itself (JSON-RPC errors) map to the host's codes: `INVALID_PARAMS` →
`invalid_request`, `REQUEST_TIMEOUT` → `timed_out`, `PARSE_ERROR`/`INVALID_REQUEST`/
`METHOD_NOT_FOUND` → `protocol_error`, anything else → `plugin_error` (`detail.mcp_code` keeps
the number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mcp.shared.exceptions import MCPError
from referencing import Registry
from referencing.exceptions import Unresolvable

from plughost.sdk.call import (
    INVALID_REQUEST,
    PLUGIN_ERROR,
    PROTOCOL_ERROR,
    TIMED_OUT,
    Outcome,
    PluginError,
)
from plughost.sdk.descriptor import MethodSpec

TOOL_ERROR_TYPE = "McpToolError"  # `PluginError.type` of a tool that answered `isError: true`
MAX_SCHEMA_ERRORS = 5
PROTOCOL_CODES = frozenset({types.PARSE_ERROR, types.INVALID_REQUEST, types.METHOD_NOT_FOUND})


def method_spec(tool: types.Tool) -> MethodSpec:
    """The method a tool becomes: its name, description (or title) and input schema."""
    return MethodSpec(tool.name, tool.description or tool.title or "", dict(tool.input_schema))


def compile_schema(tool: types.Tool) -> Validator | None:
    """A validator for the tool's input schema (Draft 2020-12 unless it names another draft), or
    None when the schema is not a valid JSON Schema (the server then checks the arguments alone).

    `$ref`s resolve only within the schema: nothing is fetched.
    """
    schema = dict(tool.input_schema)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    validator: Validator = cls(schema, registry=Registry())
    return validator


def argument_problems(validator: Validator, tool: str, arguments: Mapping[str, Any]) -> Outcome | None:
    """`invalid_request` naming what is wrong when `arguments` violate the tool's input schema."""
    try:
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.absolute_path))
    except Unresolvable:  # a `$ref` outside the schema: the server checks the arguments itself
        return None
    if not errors:
        return None
    worst = best_match(errors) or errors[0]
    listed = [{"path": _path(e), "message": e.message} for e in errors[:MAX_SCHEMA_ERRORS]]
    return Outcome.failed(
        INVALID_REQUEST,
        f"arguments of tool '{tool}' do not match its input schema: {_path(worst)}: {worst.message}",
        errors=listed,
    )


def _path(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(the arguments)"


def tool_outcome(result: types.CallToolResult) -> Outcome:
    """The outcome of a tool's answer (see the module docstring)."""
    blocks = [block.model_dump(by_alias=True, mode="json", exclude_none=True) for block in result.content]
    if result.is_error:
        text = "\n".join(b["text"] for b in blocks if b.get("type") == "text" and b.get("text"))
        message = text or "the tool reported an error without a message"
        return Outcome(None, (), PluginError(PLUGIN_ERROR, message, TOOL_ERROR_TYPE, detail={"content": blocks}))
    if result.structured_content is not None:
        return Outcome(result.structured_content)
    if not blocks:
        return Outcome(None)
    if len(blocks) == 1 and blocks[0].get("type") == "text":
        return Outcome(blocks[0].get("text", ""))
    return Outcome(blocks)


def request_failure(exc: MCPError, tool: str, plugin_id: str) -> Outcome:
    """The outcome of a `tools/call` the server (or the link) answered with a JSON-RPC error
    (`CONNECTION_CLOSED` is the handle's to judge: it knows whether the server died)."""
    code, text = exc.error.code, exc.error.message
    detail: dict[str, Any] = {"mcp_code": code}
    if exc.error.data is not None:
        detail["data"] = exc.error.data
    if code == types.REQUEST_TIMEOUT:
        message = f"the call to tool '{tool}' of MCP server '{plugin_id}' passed its deadline: {text}"
        return Outcome(None, (), PluginError(TIMED_OUT, message, retryable=True, detail=detail))
    if code == types.INVALID_PARAMS:
        message = f"MCP server '{plugin_id}' refused the arguments of tool '{tool}': {text}"
        return Outcome(None, (), PluginError(INVALID_REQUEST, message, detail=detail))
    if code in PROTOCOL_CODES:
        message = f"MCP server '{plugin_id}', tool '{tool}': {text} (JSON-RPC error {code})"
        return Outcome(None, (), PluginError(PROTOCOL_ERROR, message, detail=detail))
    message = f"tool '{tool}' of MCP server '{plugin_id}' failed: {text} (JSON-RPC error {code})"
    return Outcome(None, (), PluginError(PLUGIN_ERROR, message, "MCPError", detail=detail))


__all__ = [
    "TOOL_ERROR_TYPE",
    "argument_problems",
    "compile_schema",
    "method_spec",
    "request_failure",
    "tool_outcome",
]
