"""Host configuration (`plughost.toml`) and per-plugin configuration (`config/plugins/<id>.toml`).

`HostConfig` validates the sections of the host layer and the runtimes (`[host]`, `[guard]`,
`[process]`). The bot domain's tables (`[commands]`, `[permissions]`, `[[bots]]`) are kept as read
and validated by the bot layer (`plughost.bot.config.BotSettings`), which the core does not know.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from plughost.core.files import remove_leftovers, write_atomic
from plughost.errors import ConfigError
from plughost.runtime.config import ProcessConfig

HOST_CONFIG_FILE = "plughost.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSection(_Section):
    """Where plugins and their data live (paths relative to the workspace)."""

    plugin_dirs: list[str] = Field(default_factory=lambda: ["plugins"])
    config_dir: str = "config/plugins"
    data_dir: str = "data"
    state_file: str = "plugin-state.toml"
    entry_points: bool = True
    event_history: int = Field(default=1000, ge=1)
    hot_reload: bool = False  # `plughost run` / `Host` watch the plugin directories (`plughost run --reload`)
    reload_debounce_ms: int = Field(default=300, ge=0, le=60_000)  # quiet time after a change before reloading


class GuardSection(_Section):
    """Circuit breaker and timeout defaults."""

    failure_threshold: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=60.0, gt=0)
    default_timeout_s: float = Field(default=30.0, gt=0)


class HostConfig(_Section):
    """The whole `plughost.toml`. Unknown sections or keys are errors."""

    host: HostSection = Field(default_factory=HostSection)
    guard: GuardSection = Field(default_factory=GuardSection)
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    # the bot domain's tables, as read; plughost.bot.config.BotSettings validates them
    commands: dict[str, Any] = Field(default_factory=dict)
    permissions: dict[str, Any] = Field(default_factory=dict)
    bots: list[dict[str, Any]] = Field(default_factory=list)
    # the management server's table, as read; plughost.manage.settings.ManageSettings validates it
    manage: dict[str, Any] = Field(default_factory=dict)
    # the plugin market's table, as read; plughost.market.settings.MarketSettings validates it
    market: dict[str, Any] = Field(default_factory=dict)
    # the agent's table, as read; plughost.agent.settings.AgentSettings validates it
    agent: dict[str, Any] = Field(default_factory=dict)
    # the cluster's table (Redis backend), as read; plughost.cluster.ClusterSettings validates it
    cluster: dict[str, Any] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from (None when it was built in code)."""
        return self._source

    @classmethod
    def load(cls, workspace: Path) -> HostConfig:
        """Read `<workspace>/plughost.toml`; defaults when it does not exist."""
        path = workspace / HOST_CONFIG_FILE
        if not path.exists():
            return cls()
        data = read_toml(path)
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc
        config._source = path
        return config


def describe_validation_error(exc: ValidationError) -> str:
    """Every problem of a configuration as `section.key: message`, joined by "; "."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {_message(e)}" for e in exc.errors())


def _message(err: Any) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key (check the spelling)"
    return str(err.get("msg", "invalid value"))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; errors name the file and the line."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


class PluginConfigStore:
    """Per-plugin configuration files under `config/plugins/<id>.toml`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, plugin_id: str) -> Path:
        return self.directory / f"{plugin_id}.toml"

    def load(self, plugin_id: str) -> dict[str, Any]:
        """The plugin's config table ({} when it has no file); invalid TOML raises ConfigError."""
        path = self.path(plugin_id)
        remove_leftovers(path)
        return read_toml(path) if path.exists() else {}

    def save(self, plugin_id: str, config: dict[str, Any]) -> None:
        """Persist the config atomically (the previous file is kept as `.bak`)."""
        try:
            text = tomli_w.dumps(config)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config of plugin '{plugin_id}' cannot be written as TOML: {exc}") from exc
        write_atomic(self.path(plugin_id), text)
