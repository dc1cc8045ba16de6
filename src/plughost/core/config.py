"""Host configuration (`plughost.toml`) and per-plugin configuration (`config/plugins/<id>.toml`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plughost.core.botconfig import BotConfig
from plughost.core.commands_config import CommandsConfig, PermissionsConfig
from plughost.core.files import remove_leftovers, write_atomic
from plughost.core.process_config import ProcessConfig
from plughost.errors import ConfigError

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


class GuardSection(_Section):
    """Circuit breaker and timeout defaults."""

    failure_threshold: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=60.0, gt=0)
    default_timeout_s: float = Field(default=30.0, gt=0)


class HostConfig(_Section):
    """The whole `plughost.toml`. Unknown sections or keys are errors."""

    host: HostSection = Field(default_factory=HostSection)
    guard: GuardSection = Field(default_factory=GuardSection)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    bots: list[BotConfig] = Field(default_factory=list)  # [[bots]]: OneBot v11 connections
    process: ProcessConfig = Field(default_factory=ProcessConfig)

    @classmethod
    def load(cls, workspace: Path) -> HostConfig:
        """Read `<workspace>/plughost.toml`; defaults when it does not exist."""
        path = workspace / HOST_CONFIG_FILE
        if not path.exists():
            return cls()
        data = read_toml(path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {_message(e)}" for e in exc.errors())
            raise ConfigError(f"{path}: {problems}") from exc


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
