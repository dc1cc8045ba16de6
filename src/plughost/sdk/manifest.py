"""`PluginManifest`: one format for every plugin, read from `plugin.toml` or `plugin.json`.

LurkBot's and Jank's spellings are accepted (`entry`/`entry_point`/`main_class`/`binary`,
`name`/`id`, author as a string or an object). Unknown keys are errors naming the key and file.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plughost.errors import ManifestError, ValidationIssue
from plughost.sdk.manifest_remote import RemoteSettings

PLUGIN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ID_RE = re.compile(PLUGIN_ID_PATTERN)
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REFERENCE_RE = re.compile(r"\$\{([^}]*)\}")  # `${NAME}` in an MCP server's env and headers
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
MANIFEST_FILES = ("plugin.toml", "plugin.json")
# the module a Python plugin directory is loaded from when the manifest names no `entry`, in this order
PYTHON_DEFAULT_ENTRIES = ("__init__.py", "plugin.py", "main.py")
# a Python plugin's own packages (its `dependencies.python`, installed by `plughost market`): the
# Python runtime puts `<plugin dir>/.site` on the import path while the plugin is loaded
SITE_DIR = ".site"

PluginType = Literal[
    "tool",
    "middleware",
    "hook",
    "integration",
    "channel",
    "skill",
    "provider",
    "filter",
    "handler",
    "notifier",
    "other",
]
RuntimeName = Literal["python", "native", "process", "mcp"]
Isolation = Literal["none", "process", "sandbox"]


def is_valid_plugin_id(value: str) -> bool:
    """True when `value` follows the plugin id rule."""
    return bool(_ID_RE.match(value))


def is_semver(value: str) -> bool:
    return bool(_SEMVER_RE.match(value))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Author(_Strict):
    name: str
    email: str | None = None
    url: str | None = None


class Permissions(_Strict):
    """What the plugin may do; enforced for isolation ≠ none.

    What a manifest does not state depends on its isolation: allowed for `none` and `process`,
    denied for `sandbox` (see `PluginManifest`).
    """

    filesystem: bool = True
    network: bool = True
    exec: bool = True
    channels: list[str] = Field(default_factory=list)
    """Chats the bot dispatcher routes to the plugin (`group:123`, `private` …; see docs/bot.md)."""
    topics: list[str] = Field(default_factory=list)
    """Message-bus topics (patterns: `weather.*`, `weather.>`) it may publish, subscribe to and
    request, besides those under its own id, which it always may."""
    state: list[str] = Field(default_factory=list)
    """Shared state namespaces it may use (its own namespace needs no declaring)."""


SANDBOX_DENIES = ("filesystem", "network", "exec")  # what isolation = "sandbox" denies unless granted


class Limits(_Strict):
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    cpu_seconds: int | None = Field(default=None, gt=0)


class Dependencies(_Strict):
    python: list[str] = Field(default_factory=list)
    plugins: list[str] = Field(default_factory=list)
    system: list[str] = Field(default_factory=list)
    # environment variables the plugin reads: a worker gets them from the host's environment
    # (and nothing else of it but PATH, HOME, locale and time zone)
    env: list[str] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _check_env(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ENV_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not an environment variable name (letters, digits and '_')")
        return names


class BusSubscription(_Strict):
    """A message-bus handler of an executable plugin, which cannot describe its own (Jank's protocol
    has no descriptor): the host calls `Execute(handler, {topic, data, sender})` for each message."""

    topic: str = Field(min_length=1, description="a topic or pattern: `kv.get`, `weather.*`, `weather.>`")
    handler: str = Field(min_length=1, description="the method called with each message")
    mode: Literal["subscribe", "reply"] = "subscribe"
    """`subscribe`: every matching message; `reply`: answers requests, the method's result is the answer."""


def env_references(value: str) -> list[str]:
    """The host environment variables `value` names as `${NAME}` (an MCP server's env and headers)."""
    return _ENV_REFERENCE_RE.findall(value)


def _check_references(values: dict[str, str]) -> None:
    for key, value in values.items():
        for name in env_references(value):
            if not _ENV_NAME_RE.match(name):
                raise ValueError(f"{key}: '${{{name}}}' does not name an environment variable")


class McpSettings(_Strict):
    """`[mcp]`: how the host starts (`command`) or reaches (`url`) an MCP server (`runtime = "mcp"`).

    Values of `env` and `headers` may name variables of the host's environment as `${NAME}`, so a
    secret stays in the environment, never in the manifest (`Authorization = "Bearer ${TOKEN}"`).
    """

    cwd: str | None = None  # a stdio server's working directory, relative to the plugin directory
    env: dict[str, str] = Field(default_factory=dict)  # a stdio server's variables, on top of the minimal set
    headers: dict[str, str] = Field(default_factory=dict)  # HTTP headers sent to a server at `url`

    @field_validator("env")
    @classmethod
    def _check_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not _ENV_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not an environment variable name (letters, digits and '_')")
        _check_references(env)
        return env

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not an HTTP header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"{name}: a header value cannot contain line breaks")
        _check_references(headers)
        return headers


class Handshake(_Strict):
    """go-plugin handshake of a process plugin (Jank's defaults)."""

    protocol_version: int = 1
    magic_cookie_key: str = "JANK_PLUGIN"
    magic_cookie_value: str = "jank-plugin"


class PluginManifest(_Strict):
    """A plugin's manifest. `id` is the plugin id; `name` is a display name (defaults to id).

    `isolation = "sandbox"` is deny-by-default: of `permissions.filesystem`, `network` and `exec`
    only those the manifest sets to true are granted. `process` (and `none`) grant what the
    manifest does not switch off.
    """

    id: str
    name: str = ""
    version: str = "0.1.0"
    description: str = ""
    author: Author | None = None
    repository: str | None = None
    type: PluginType = "other"
    runtime: RuntimeName = "python"
    entry: str | None = None
    enabled: bool = True
    auto_start: bool = True
    priority: int = Field(default=0, ge=0, le=1000)
    permissions: Permissions = Field(default_factory=Permissions)
    limits: Limits = Field(default_factory=Limits)
    isolation: Isolation = "none"
    dependencies: Dependencies = Field(default_factory=Dependencies)
    tags: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    config_schema: dict[str, Any] | None = None
    handshake: Handshake | None = None
    start_timeout: int | None = Field(default=None, gt=0, description="process start timeout, ms")
    min_port: int | None = Field(default=None, ge=1, le=65535)
    max_port: int | None = Field(default=None, ge=1, le=65535)
    auto_mtls: bool = False
    # runtime = "process": a go-plugin plugin already running elsewhere, attached by address (no binary)
    remote: RemoteSettings | None = None
    # runtime = "mcp": the MCP server, started with `command` (stdio) or reached at `url` (streamable HTTP)
    command: list[str] | None = None
    url: str | None = None
    mcp: McpSettings | None = None
    # runtime = "process": bus handlers of a plugin whose protocol cannot declare them (`BusSubscription`)
    subscriptions: list[BusSubscription] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _accept_other_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "id" not in data and "name" in data:
            data["id"] = data["name"]
        main_class = data.pop("main_class", None)
        entry_keys = [k for k in ("entry", "entry_point", "binary") if k in data]
        if len(entry_keys) > 1:
            raise ValueError(f"give only one of {', '.join(entry_keys)}")
        if entry_keys:
            key = entry_keys[0]
            data["entry"] = data.pop(key)
            if key == "binary" and "runtime" not in data:
                data["runtime"] = "process"
        if main_class is not None:  # LurkBot: entry_point = "main.py", main_class = "MyPlugin"
            data["entry"] = f"{data['entry']}:{main_class}" if data.get("entry") else f":{main_class}"
        if isinstance(data.get("author"), str):
            data["author"] = {"name": data["author"]}
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_valid_plugin_id(value):
            raise ValueError(
                f"'{value}' is not a valid plugin id (letters, digits, '.', '_', '-'; "
                "starts with a letter or digit; at most 128 characters)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not is_semver(value):
            raise ValueError(f"'{value}' is not a semantic version such as 1.2.3")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> PluginManifest:
        if not self.name:
            self.name = self.id
        if self.isolation == "sandbox":
            stated = self.permissions.model_fields_set
            denied = {name: False for name in SANDBOX_DENIES if name not in stated}
            if denied:
                self.permissions = self.permissions.model_copy(update=denied)
        if self.runtime == "process" and self.handshake is None:
            self.handshake = Handshake()
        self._check_mcp()
        self._check_remote()
        if self.subscriptions and self.runtime != "process":
            raise ValueError(
                '`[[subscriptions]]` are for executable plugins (runtime = "process"); a Python plugin uses '
                "@plugin.subscribe / @plugin.reply_to, a native one declares them in bot.describe"
            )
        return self

    def _check_remote(self) -> None:
        """`[remote]` replaces the binary of a process plugin (see `RemoteSettings`)."""
        if self.remote is None:
            return
        if self.runtime != "process":
            raise ValueError('`[remote]` is for go-plugin plugins (runtime = "process")')
        if self.entry is not None:
            raise ValueError("a plugin with `[remote]` runs elsewhere: remove `entry`/`binary`")
        if self.isolation != "none" or self.auto_mtls:
            raise ValueError("`isolation` and `auto_mtls` apply to plugins the host starts, not to `[remote]` ones")

    def _check_mcp(self) -> None:
        """`command` xor `url` for MCP servers, and only for them (see docs/mcp.md)."""
        if self.runtime != "mcp":
            given = [key for key in ("command", "url", "mcp") if getattr(self, key) is not None]
            if given:
                raise ValueError(f'`{given[0]}` is only for MCP servers (runtime = "mcp")')
            return
        if self.command is not None and self.url is not None:
            raise ValueError(
                "give either `command` (an MCP server the host starts, over stdio) or `url` (one it reaches "
                "over streamable HTTP), not both"
            )
        if self.command is None and self.url is None:
            raise ValueError(
                'an MCP server needs `command = ["program", "arg", …]` (stdio) or `url = "http://…"` (streamable HTTP)'
            )
        settings = self.mcp or McpSettings()
        if self.command is not None:
            if not self.command or not self.command[0].strip():
                raise ValueError('`command` must name the program to start: command = ["program", "arg", …]')
            if settings.headers:
                raise ValueError("`mcp.headers` are for a server at `url`; a stdio server gets `mcp.env`")
            return
        assert self.url is not None
        scheme, _, rest = self.url.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(f"`url` must be an http:// or https:// address, got '{self.url}'")
        if settings.env or settings.cwd is not None:
            raise ValueError("`mcp.env` and `mcp.cwd` are for a server the host starts (`command`), not one at `url`")
        if self.isolation != "none":
            raise ValueError(
                f'isolation = "{self.isolation}" applies to MCP servers the host starts (`command`); the server '
                "at `url` runs elsewhere"
            )

    @property
    def parsed_version(self) -> Version:
        try:
            return Version(self.version.split("+", 1)[0])
        except InvalidVersion:  # semver pre-release spellings packaging rejects
            return Version(self.version.split("-", 1)[0].split("+", 1)[0])


def find_manifest_file(plugin_dir: Path) -> Path | None:
    """The manifest file in `plugin_dir` (`plugin.toml` preferred), or None."""
    for name in MANIFEST_FILES:
        candidate = plugin_dir / name
        if candidate.is_file():
            return candidate
    return None


def read_manifest_data(path: Path) -> dict[str, Any]:
    """Parse a manifest file into a mapping; syntax errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([ValidationIssue(str(path), "", f"cannot read: {exc}")]) from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            [ValidationIssue(str(path), "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([ValidationIssue(str(path), "", f"invalid TOML: {exc}")]) from exc
    except RecursionError:
        raise ManifestError([ValidationIssue(str(path), "", "arrays or tables nested too deeply to read")]) from None
    except ValueError as exc:  # e.g. an integer with more digits than int() accepts
        raise ManifestError([ValidationIssue(str(path), "", f"cannot read: {exc}")]) from None
    if not isinstance(data, dict):
        raise ManifestError([ValidationIssue(str(path), "", "the manifest must be a table/object")])
    return data


def parse_manifest(data: dict[str, Any], source: str, *, default_id: str | None = None) -> PluginManifest:
    """Validate manifest data; every problem is reported with file and field."""
    if default_id and "id" not in data and "name" not in data:
        data = {**data, "id": default_id}
    try:
        return PluginManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError([_issue(source, err) for err in exc.errors()]) from exc


def load_manifest(path: Path, *, default_id: str | None = None) -> PluginManifest:
    """Read and validate `plugin.toml`/`plugin.json`."""
    return parse_manifest(read_manifest_data(path), str(path), default_id=default_id)


def _issue(source: str, err: Any) -> ValidationIssue:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        return ValidationIssue(source, loc, f"unknown key '{loc}' (check the spelling)")
    if err.get("type") == "missing":
        field = "id" if loc in ("id", "") else loc
        return ValidationIssue(source, field, "required key is missing")
    message = str(err.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return ValidationIssue(source, loc, message)
