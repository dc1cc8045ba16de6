"""`plughost status`: is a host running for the workspace, and how is it doing?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from plughost.cli.common import (
    JsonOption,
    KeyOption,
    LocalOption,
    NoHost,
    RemoteOption,
    Where,
    find_host,
    run_with_host,
    unreachable,
)
from plughost.cli.output import note, print_json, stdout

if TYPE_CHECKING:
    from plughost.host import Host


def status(
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show the running host: address, pid, uptime, memory, plugins by state and runtime, open breakers.

    Asks the host serving the workspace (or --remote). When none runs it says so and exits 1
    (--json: {"running": false, ...}). --local loads the workspace instead and shows what
    `plughost run` would start with.
    """
    where = Where.given(remote, key, local)
    data = _remote_status(where)
    if isinstance(data, NoHost):
        if not local:
            _not_running(where.workspace, data, as_json)
        data = run_with_host(where.workspace, _local_status, where.plugin_dirs, loaded=data.note())
    if as_json:
        print_json(data)
    else:
        _print_status(data)


def _remote_status(where: Where) -> dict[str, Any] | NoHost:
    from plughost.cli.remote import HostUnreachable

    found = find_host(where)
    if isinstance(found, NoHost):
        return found
    try:
        with found:
            return {"running": True, "url": found.url, **found.status()}
    except HostUnreachable as exc:
        return unreachable(found, exc, changes_state=False)


def _not_running(workspace: Path, why: NoHost, as_json: bool) -> None:
    if why.reason != "no running host":
        note(why.reason.removesuffix("; no running host"))
    if as_json:
        print_json({"running": False, "workspace": str(workspace)})
    else:
        stdout().print(f"no running host serves {workspace}", highlight=False)
        note("start one with `plughost run`; `plughost status --local` shows what it would load")
    raise typer.Exit(1)


async def _local_status(host: Host) -> dict[str, Any]:
    """What loading the workspace gives: plugin counts by state and runtime (no uptime, no calls)."""
    from collections import Counter

    from plughost import __version__

    instances = host.manager.list_plugins()
    return {
        "running": False,
        "version": __version__,
        "workspace": str(host.workspace),
        "plugins": dict(Counter(str(i.state) for i in instances)),
        "runtimes": dict(Counter(i.manifest.runtime for i in instances if i.is_loaded)),
    }


def _print_status(data: dict[str, Any]) -> None:
    from rich.text import Text

    out = stdout()
    if data["running"]:
        host = f"running at {data['url']} (pid {data['pid']}, up {_duration(data['uptime_s'])})"
    else:
        host = "not running (the workspace as `plughost run` would load it)"
    lines = [("host", host), ("version", data["version"]), ("workspace", data["workspace"])]
    if data.get("memory_rss_bytes") is not None:
        lines.append(("memory", f"{data['memory_rss_bytes'] / 2**20:.1f} MiB resident"))
    lines.append(("plugins", _counts(data["plugins"])))
    lines.append(("runtimes", _counts(data["runtimes"])))
    if data["running"]:
        lines.append(("open breakers", ", ".join(data["open_breakers"]) or "none"))
        lines.append(("bots", str(data["bots"])))
    for key, value in lines:
        out.print(Text.assemble((key, "bold"), f": {value}"))
    for connection in data.get("bot_connections", []):  # each configured bot's link
        out.print(Text("  " + connection["summary"]))
    if data.get("bus"):
        out.print(Text.assemble(("bus", "bold"), f": {bus_summary(data['bus'])}"))
    schedules = data.get("schedules") or []
    if schedules:
        out.print(Text.assemble(("schedules", "bold"), f": {len(schedules)}"))
    for job in schedules:
        out.print(Text("  " + schedule_summary(job)))


def bus_summary(bus: dict[str, Any]) -> str:
    text = f"{bus['backend']}, {bus['published']} published, {bus['requests']} requests, {bus['delivered']} delivered"
    if bus["failed"] or bus["overflowed"]:
        text += f", {bus['failed']} failed, {bus['overflowed']} dropped for slow subscribers"
    return text


def schedule_summary(job: dict[str, Any]) -> str:
    """`reminders/morning cron 0 8 * * 1-5 (Asia/Shanghai): next 2026-12-03T08:00:00+08:00, last ok`."""
    when = f"next {job['next_run']}" if job.get("next_run") else "inactive"
    last = f", last {job['last_outcome']}" if job.get("last_outcome") else ""
    failures = f", {job['failures']} failed" if job.get("failures") else ""
    return f"{job['plugin']}/{job['handler']} {job['trigger']}: {when}{last}{failures}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def _duration(seconds: float) -> str:
    """`3 h 2 min`, `2 min 5 s`, `4.2 s`."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"
