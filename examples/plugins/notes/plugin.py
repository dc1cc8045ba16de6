"""A plugin that uses its config file and its data directory.

Config (`config/plugins/notes.toml`): `max_notes` (int), `greeting` (str).
Notes are stored in `<data_dir>/notes.json` and survive restarts.
"""

import json
from pathlib import Path
from typing import Any

from plughost.sdk import Plugin, PluginContext

plugin = Plugin()
state: dict[str, Any] = {}


def _store() -> Path:
    return Path(state["data_dir"]) / "notes.json"


def _read() -> list[str]:
    path = _store()
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


@plugin.on_load
def setup(ctx: PluginContext) -> None:
    state["data_dir"] = ctx.data_dir
    state["config"] = dict(ctx.config)
    ctx.logger.info("notes: %d stored notes", len(_read()))


@plugin.on_reconfigure
def reconfigure(ctx: PluginContext, config: dict[str, Any]) -> None:
    state["config"] = dict(config)


@plugin.method("add")
def add(text: str) -> dict[str, Any]:
    """Store a note (at most `max_notes`)."""
    notes = _read()
    limit = int(state["config"].get("max_notes", 100))
    if len(notes) >= limit:
        raise ValueError(f"the notebook is full ({limit} notes); raise max_notes in config/plugins/notes.toml")
    notes.append(text)
    tmp = _store().with_suffix(".tmp")
    tmp.write_text(json.dumps(notes, ensure_ascii=False), encoding="utf-8")
    tmp.replace(_store())
    return {"count": len(notes)}


@plugin.method("list")
def list_notes() -> dict[str, Any]:
    """All notes, with the configured greeting."""
    return {"greeting": state["config"].get("greeting", "hello"), "notes": _read()}
