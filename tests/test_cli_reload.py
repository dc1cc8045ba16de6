"""`plughost run --reload` end to end: a subprocess host, a saved plugin file, the reload seen
through the management API's event stream, and the new code answering `plughost plugins execute`."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.core.watching import VERSIONED
from tests.test_cli import HostProcess, plughost

WAIT_S = 60.0


def next_event(lines: Iterator[str]) -> dict[str, Any]:
    """The next event of a Server-Sent Events stream (keep-alive comments skipped)."""
    for line in lines:
        if line.startswith("data: "):
            event: dict[str, Any] = json.loads(line[6:])
            return event
    raise AssertionError("the event stream ended")


def printed(host: HostProcess, text: str) -> str:
    """The first line the host prints (from now on) that contains `text`."""
    deadline = time.monotonic() + WAIT_S
    try:
        while (line := host.lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            if text in line:
                return line
    except queue.Empty:
        pass
    raise AssertionError(f"plughost run did not print {text!r}")


def test_plughost_run_reload_reloads_a_saved_plugin(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    alpha = workspace / "plugins" / "alpha"
    alpha.mkdir(parents=True)
    (alpha / "plugin.toml").write_text('id = "alpha"\nversion = "1.0.0"\n')
    (alpha / "plugin.py").write_text(VERSIONED.format(value="alpha 1"))
    with HostProcess(workspace, args=["--reload"]) as host:
        server = json.loads((workspace / ".plughost" / "manage.json").read_text())
        assert server["url"] == host.url
        headers = {"Authorization": f"Bearer {(workspace / '.plughost' / 'manage.key').read_text().strip()}"}
        with httpx.Client(base_url=server["url"], headers=headers, timeout=WAIT_S) as api:
            last_id = api.get("/api/v1/events").json()["last_id"]
            query = {"types": "reload,error", "plugin_id": "alpha", "after": last_id}
            with api.stream("GET", "/api/v1/events/stream", params=query) as stream:
                assert stream.status_code == 200
                (alpha / "plugin.py").write_text(VERSIONED.format(value="alpha 2"))
                event = next_event(stream.iter_lines())
            assert event["type"] == "reload" and event["success"] is True, event
            reloads = api.get("/api/v1/events", params={"types": "reload"}).json()["events"]
            assert [(e["plugin_id"], e["success"]) for e in reloads] == [("alpha", True)]
        assert "reloaded 'alpha'" in printed(host, "reloaded")
        result = plughost("plugins", "execute", "alpha", "value", "-w", str(workspace))
        assert result.returncode == 0, result.stderr
        assert "alpha 2" in result.stdout
        assert host.stop() == 0
