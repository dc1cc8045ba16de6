"""Calling tools: arguments checked against the tool's JSON schema, the call made through the guard,
the caller's permission checked, and every failure a `ToolResult` — never an exception.

```python
toolbox = Toolbox(manager)
result = await toolbox.call_tool("calculator__add", {"a": 2, "b": 3})
result.ok, result.value, result.text()      # True, 5.0, "5.0"
```

Which tools a caller may use is a permission of the host's permission service: `tool:<plugin>.<method>`
(`tool:<plugin>.command.<name>` for a command), `tool:<plugin>.*` for all of one plugin's tools, and
`tool:*` for every tool. The console (and the MCP server, which runs as the operator) holds them all;
so do the configured owners. Nobody else holds a tool permission until it is granted
(`/permission permit m123.* tool:calculator.*`).
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from plughost.agent.catalog import TOOL_NAMESPACE, ToolCatalog, ToolSpec
from plughost.agent.prompt import truncate
from plughost.sdk.call import Call, Outcome
from plughost.sdk.commands import CommandContext
from plughost.sdk.message import Message
from plughost.sdk.models import EventType
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.senders import CommandSender

if TYPE_CHECKING:
    from plughost.bot.commands.permissions import PermissionService
    from plughost.core.manager import PluginManager

log = logging.getLogger("plughost.agent")
UNKNOWN_TOOL = "unknown_tool"
INVALID_ARGUMENTS = "invalid_arguments"
PERMISSION_DENIED = "permission_denied"
INVALID_SCHEMA = "invalid_schema"
INTERNAL_ERROR = "internal_error"
SURFACE_ID = "agent"
"""The id tool-call events carry when no plugin is involved (an unknown tool)."""
MAX_SCHEMA_ERRORS = 5


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls tools. `unrestricted` callers (the console, owners, an MCP client holding the
    management key) may use every tool; others need `tool:…` permissions."""

    permittee: PermitteeId
    sender: CommandSender
    unrestricted: bool = False

    @classmethod
    def console(cls) -> Caller:
        return cls(PermitteeId.parse("console"), CommandSender.console(), True)

    @classmethod
    def of_sender(cls, sender: CommandSender, *, owners: frozenset[int] | set[int] = frozenset()) -> Caller:
        """A chat sender; the console and `owners` may use every tool."""
        unrestricted = sender.is_console or (sender.user_id is not None and sender.user_id in owners)
        return cls(sender.permittee, sender, unrestricted)

    @property
    def label(self) -> str:
        return str(self.permittee)


@dataclass(slots=True)
class ToolResult:
    """The result of one tool call: `ok` and the `value`, or the `error` with its `code`."""

    name: str
    ok: bool
    value: Any = None
    error: str | None = None
    code: str | None = None
    plugin_id: str | None = None
    duration_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def text(self, limit: int | None = None) -> str:
        """What a model reads: the value (text as it is, anything else as JSON) or `error: …`."""
        if self.ok:
            text = (
                self.value if isinstance(self.value, str) else json.dumps(self.value, ensure_ascii=False, default=str)
            )
        else:
            text = f"error ({self.code}): {self.error}"
        return truncate(text, limit) if limit is not None else text

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tool": self.name, "ok": self.ok}
        if self.ok:
            data["value"] = self.value
        else:
            data["error"] = {"code": self.code, "message": self.error}
        return data


class Toolbox:
    """The tool catalog of a manager and `call_tool` for it.

    `permissions` (the host's permission service) decides what restricted callers may use; without
    it every caller may use every tool. `timeout_s` overrides the plugins' own timeouts for tool calls.
    Without a `catalog` the toolbox makes one (with the commands of `command_plugins` as tools too)
    and `close()` closes it.
    """

    def __init__(
        self,
        manager: PluginManager,
        *,
        catalog: ToolCatalog | None = None,
        command_plugins: Collection[str] = (),
        permissions: PermissionService | None = None,
        timeout_s: float | None = None,
        surface: str = "agent",
    ) -> None:
        self.manager = manager
        self._owns_catalog = catalog is None
        self.catalog = catalog if catalog is not None else ToolCatalog(manager, command_plugins=command_plugins)
        self.permissions = permissions
        self.timeout_s = timeout_s
        self.surface = surface
        self._validators: dict[str, tuple[tuple[str, str, str, str], Any]] = {}
        if permissions is not None:
            self.catalog.add_listener(self.register_permissions)
            self.register_permissions()

    def close(self) -> None:
        self.catalog.remove_listener(self.register_permissions)
        if self._owns_catalog:
            self.catalog.close()

    def register_permissions(self) -> None:
        """Declare `tool:*`, `tool:<plugin>.*` and each tool's permission (granted to nobody by default)."""
        service = self.permissions
        if service is None:
            return
        service.register(PermissionId(TOOL_NAMESPACE, "*"), "call every agent tool")
        for tool in self.catalog.tools():
            service.register(tool.plugin_permission, f"call every tool of {tool.plugin_id}")
            service.register(tool.permission, f"call the tool {tool.name} ({tool.label})")
        service.flush()

    # what a caller may use ------------------------------------------------------------------------
    def allows(self, tool: ToolSpec, caller: Caller | None) -> bool:
        if caller is None or caller.unrestricted or self.permissions is None:
            return True
        return self.permissions.has(caller.permittee, tool.permission) or self.permissions.has(
            caller.permittee, tool.plugin_permission
        )

    def tools_for(self, caller: Caller | None = None) -> list[ToolSpec]:
        """The tools `caller` may use (every tool for None)."""
        return [t for t in self.catalog.tools() if self.allows(t, caller)]

    def openai_tools(self, caller: Caller | None = None) -> list[dict[str, Any]]:
        return [t.openai() for t in self.tools_for(caller)]

    # calling ---------------------------------------------------------------------------------------
    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,
        conversation: str | None = None,
    ) -> ToolResult:
        """Validate `arguments` (an object, or its JSON text) and call the tool through the guard.

        Never raises for a failure: an unknown tool, arguments that violate the schema, a missing
        permission, a tool that raises or times out — each is a `ToolResult` with `ok=False`.
        """
        started = time.perf_counter()
        try:
            result = await self._call(name, arguments, caller, timeout)
        except Exception as exc:  # a bug of ours must not end the agent's run
            log.exception("calling tool '%s' failed inside plughost", name)
            result = ToolResult(name, False, error=f"{type(exc).__name__}: {exc}", code=INTERNAL_ERROR)
        result.duration_s = time.perf_counter() - started
        self._record(result, arguments, caller, conversation)
        return result

    async def _call(
        self, name: str, arguments: Mapping[str, Any] | str | None, caller: Caller | None, timeout: float | None
    ) -> ToolResult:
        tool = self.catalog.get(name)
        if tool is None:
            return ToolResult(name, False, error=self._unknown(name, caller), code=UNKNOWN_TOOL)
        failed = _Failure(name, tool.plugin_id)
        if not self.allows(tool, caller):
            return failed(
                PERMISSION_DENIED, f"calling {tool.name} ({tool.label}) needs the permission {tool.permission}"
            )
        args = _arguments(arguments)
        if isinstance(args, str):
            return failed(INVALID_ARGUMENTS, args)
        problem = self._check(tool, args)
        if problem is not None:
            code, message = problem
            return failed(code, message)
        call = Call(tool.handler, args) if tool.command is None else _command_call(tool, args, caller)
        outcome = await self.manager.call(
            tool.plugin_id, call, timeout=timeout if timeout is not None else self.timeout_s
        )
        return _result(tool, outcome)

    def _unknown(self, name: str, caller: Caller | None) -> str:
        names = [t.name for t in self.tools_for(caller)]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"there is no tool '{name}'{hint}"

    def _check(self, tool: ToolSpec, args: dict[str, Any]) -> tuple[str, str] | None:
        """Validate `args` against the tool's schema: None when they fit, else (code, message)."""
        fingerprint = tool.fingerprint()
        cached = self._validators.get(tool.name)
        if cached is None or cached[0] != fingerprint:
            schema = dict(tool.parameters)
            cls = validator_for(schema, default=jsonschema.Draft202012Validator)
            try:
                cls.check_schema(schema)
            except SchemaError as exc:
                return INVALID_SCHEMA, f"the tool's own JSON schema is invalid ({exc.message}); tell its author"
            cached = (fingerprint, cls(schema))
            self._validators[tool.name] = cached
        errors = sorted(cached[1].iter_errors(args), key=lambda e: list(map(str, e.absolute_path)))
        if not errors:
            return None
        described = [f"{'.'.join(map(str, e.absolute_path)) or '(arguments)'}: {e.message}" for e in errors]
        more = f" (and {len(described) - MAX_SCHEMA_ERRORS} more)" if len(described) > MAX_SCHEMA_ERRORS else ""
        wanted = json.dumps(tool.parameters, ensure_ascii=False, default=str)
        return (
            INVALID_ARGUMENTS,
            f"the arguments do not fit the schema of {tool.name}: {'; '.join(described[:MAX_SCHEMA_ERRORS])}{more}. "
            f"Schema: {truncate(wanted, 2000)}",
        )

    def _record(self, result: ToolResult, arguments: Any, caller: Caller | None, conversation: str | None) -> None:
        """The call in the manager's event log (an `execute` event with `metadata.agent_tool`) and the log."""
        metadata: dict[str, Any] = {
            "agent_tool": result.name,
            "via": self.surface,
            "caller": caller.label if caller is not None else "console",
            "arguments": truncate(_json(arguments), 1000),
            "duration_s": round(result.duration_s, 6),
        }
        if conversation is not None:
            metadata["conversation"] = conversation
        if not result.ok:
            metadata["code"] = result.code
        plugin_id = result.plugin_id or SURFACE_ID
        self.manager.events.emit(
            plugin_id, EventType.EXECUTE, result.ok, f"{self.surface} tool call {result.name}", result.error, metadata
        )
        level = logging.INFO if result.ok else logging.WARNING
        log.log(
            level, "%s tool call %s by %s %s in %.3f s%s", self.surface, result.name, metadata["caller"],
            "succeeded" if result.ok else "failed", result.duration_s, f": {result.error}" if result.error else "",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Failure:
    name: str
    plugin_id: str

    def __call__(self, code: str, message: str) -> ToolResult:
        return ToolResult(self.name, False, error=message, code=code, plugin_id=self.plugin_id)


def _arguments(arguments: Mapping[str, Any] | str | None) -> dict[str, Any] | str:
    """The arguments as an object, or why they are not one."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return f"the arguments are not valid JSON ({exc.msg} at column {exc.colno}): {truncate(arguments, 200)}"
        arguments = parsed
    if not isinstance(arguments, Mapping):
        return f"the arguments must be a JSON object, not {type(arguments).__name__}"
    return dict(arguments)


def _command_call(tool: ToolSpec, args: dict[str, Any], caller: Caller | None) -> Call:
    """The `command` payload a chat command would get, with the tool's arguments as its arguments."""
    assert tool.command is not None
    path, overload = tool.command.path, tool.command.overload
    sender = caller.sender if caller is not None else CommandSender.console()
    values: dict[str, Any] = {}
    varargs: list[Any] = []
    raw: list[dict[str, Any]] | None = None
    words: list[str] = []
    if overload.raw:
        text = str(args.get("text", ""))
        raw = Message(text).to_json()
        words = text.split()
    else:
        for param in overload.params:
            if param.name not in args:
                continue
            if param.variadic:
                varargs = list(args[param.name])
                words.extend(map(_word, varargs))
            else:
                values[param.name] = args[param.name]
                words.append(_word(args[param.name]))
    line = "/" + " ".join([*path, *words])
    context = CommandContext(sender, Message(line), tool.plugin_id, " ".join(path), path[-1])
    payload = {
        "context": context.to_json(),
        "args": values,
        "varargs": varargs,
        "raw": raw,
        "words": words,
        "event": None,
        "bot_id": "",
        "self_id": 0,
    }
    return Call(tool.handler, payload, "command")


def _result(tool: ToolSpec, outcome: Outcome) -> ToolResult:
    if outcome.sends:
        log.info(
            "tool %s queued %d bot action(s); a tool call has no chat, they are dropped", tool.name, len(outcome.sends)
        )
    error = outcome.error
    if error is not None:
        return ToolResult(tool.name, False, error=str(error), code=error.code, plugin_id=tool.plugin_id)
    value = outcome.value
    if tool.command is not None:  # replies: segment lists → their text, one per line
        replies = value if isinstance(value, list) else [value]
        value = "\n".join(_reply_text(r) for r in replies if r is not None)
    return ToolResult(tool.name, True, value=value, plugin_id=tool.plugin_id)


def _reply_text(reply: Any) -> str:
    if isinstance(reply, list):
        try:
            return Message.from_json(reply).render()
        except Exception:
            return _json(reply)
    return reply if isinstance(reply, str) else _json(reply)


def _word(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
