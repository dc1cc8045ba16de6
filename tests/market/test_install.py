"""`Market` against a real HTTP server: installs, updates, rollbacks and uninstalls in a running host, and
every kind of bad input refused with nothing half-installed and the host serving as before."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_tool
from tests.market.conftest import (
    FileServer,
    Index,
    market_config,
    python_plugin,
    snapshot,
    tar_archive,
    valid_members,
)

from plughost.core.config import HostConfig
from plughost.host import Host
from plughost.market import errors
from plughost.market.market import Market
from plughost.market.verify import generate_key, sign

KEEPER = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def ping() -> str:
    return "pong"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with one plugin of its own ("keeper"), which must keep serving whatever the market does."""
    workspace = tmp_path / "ws"
    keeper = workspace / "plugins" / "keeper"
    keeper.mkdir(parents=True)
    (keeper / "plugin.toml").write_text('id = "keeper"\nversion = "1.0.0"\n')
    (keeper / "plugin.py").write_text(KEEPER)
    return workspace


async def call(host: Host, plugin_id: str, method: str = "version") -> Any:
    result = await host.manager.execute(plugin_id, method)
    assert result.success, result.error
    return result.result


def plugins_of(host: Host) -> list[tuple[str, str, str]]:
    return sorted((i.id, i.manifest.version, str(i.state)) for i in host.manager.list_plugins())


def state_json(workspace: Path) -> dict[str, Any]:
    path = workspace / ".plughost" / "market" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


async def test_install_update_rollback_and_uninstall_in_a_running_host(ws: Path, index: Index, tmp_path: Path) -> None:
    src = tmp_path / "src"
    index.publish(python_plugin(src, "app", "1.0.0", deps=("lib>=1.0",)))
    index.publish(python_plugin(src, "lib", "1.0.0"))
    market_config(ws, ("test", index.url))
    async with Host(ws) as host:
        market = Market.for_manager(host.manager)
        report = await market.install("app")
        assert [(c.id, c.action, c.required_by, c.state) for c in report.changes] == [
            ("lib", "install", "app", "enabled"),  # dependencies first
            ("app", "install", None, "enabled"),
        ]
        assert await call(host, "app") == "1.0.0" and await call(host, "lib") == "1.0.0"
        assert (await market.install("app")).unchanged == ["app"]  # already there: nothing happens

        index.publish(python_plugin(src, "app", "1.1.0", deps=("lib>=1.0",)))
        report = await market.update("app")
        assert [(c.id, c.previous, c.version, c.action) for c in report.changes] == [
            ("app", "1.0.0", "1.1.0", "update")
        ]
        assert await call(host, "app") == "1.1.0"  # served without a restart
        assert market.installed().plugins[0].kept_versions == ["1.0.0"]

        await host.manager.disable_plugin("app")
        rolled = await market.rollback("app")
        assert (rolled.version, rolled.previous, rolled.state) == ("1.0.0", "1.1.0", "disabled")  # state kept
        await host.manager.enable_plugin("app")
        assert await call(host, "app") == "1.0.0"
        assert (await market.rollback("app")).version == "1.1.0"  # and forth again
        assert await call(host, "app") == "1.1.0"
        history = market.history("app")
        assert [(e.action, e.version, e.previous) for e in history.entries] == [
            ("install", "1.0.0", None),
            ("update", "1.1.0", "1.0.0"),
            ("rollback", "1.0.0", "1.1.0"),
            ("rollback", "1.1.0", "1.0.0"),
        ]

        with pytest.raises(errors.HasDependents, match="app depends on 'lib'"):
            await market.uninstall("lib")
        (ws / "config" / "plugins").mkdir(parents=True, exist_ok=True)
        (ws / "config" / "plugins" / "app.toml").write_text("greeting = 'hi'\n")
        gone = await market.uninstall("app")
        assert gone.version == "1.1.0" and not gone.purged
        assert host.manager.get_plugin("app") is None
        assert not (ws / "plugins" / "app").exists() and not (ws / ".plughost/market/versions/app").exists()
        assert (ws / "config" / "plugins" / "app.toml").exists() and (ws / "data" / "app").is_dir()  # kept
        assert (await market.uninstall("lib", purge=True)).purged
        assert not (ws / "data" / "lib").exists()
        assert market.installed().plugins == []
        assert market.history("app").entries[-1].action == "uninstall"
        assert await call(host, "keeper", "ping") == "pong"
    assert list((ws / ".plughost" / "market" / "staging").iterdir()) == []


# bad input -------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """Prepare the index; then installing `plugin_id` (`version`) must raise `error` matching `words`."""

    setup: Callable[[Index, Path, Path], None]  # (index, workspace, sources)
    error: type[errors.MarketError]
    words: str
    plugin_id: str = "bad"
    version: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def publish_ok(index: Index, sources: Path, **changes: Any) -> dict[str, Any]:
    return index.publish(python_plugin(sources, "bad", "1.0.0"), **changes)


def edit_version(index: Index, **changes: Any) -> None:
    entry = index.plugins["bad"]["versions"][0]
    entry.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del entry[key]
    index.write()


def archive_with(*extra: tuple[str, str, bytes | str]) -> Callable[[Index, Path, Path], None]:
    def setup(index: Index, ws: Path, sources: Path) -> None:
        index.add_archive("bad", "1.0.0", tar_archive([*valid_members("bad", "1.0.0"), *extra]))

    return setup


def truncated(index: Index, ws: Path, sources: Path) -> None:
    entry = publish_ok(index, sources)
    edit_version(index, url=f"{index.server.url}/truncated/{index.dir.name}/{entry['url']}")


def zip_bomb(index: Index, ws: Path, sources: Path) -> None:
    raw = sources / "bomb.zip"
    sources.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, _, content in valid_members("bad", "1.0.0"):
            zipped.writestr(name, content)
        zipped.writestr("zeros.bin", bytes(8 << 20))
    index.add_archive("bad", "1.0.0", raw.read_bytes())


def cycle(index: Index, ws: Path, sources: Path) -> None:
    index.publish(python_plugin(sources, "bad", "1.0.0", deps=("other",)))
    index.publish(python_plugin(sources, "other", "1.0.0", deps=("bad>=1",)))


def taken(index: Index, ws: Path, sources: Path) -> None:
    publish_ok(index, sources)
    shutil.copytree(python_plugin(sources, "bad", "0.5.0"), ws / "plugins" / "bad")  # put there by hand


def load_fails(index: Index, ws: Path, sources: Path) -> None:
    hook = "\n@plugin.on_load\ndef boom() -> None:\n    raise RuntimeError('no licence key')\n"
    index.publish(python_plugin(sources, "bad", "1.0.0", deps=("helper",), code=hook))
    index.publish(python_plugin(sources, "helper", "1.0.0"))


def published(**changes: Any) -> Callable[[Index, Path, Path], None]:
    def setup(index: Index, ws: Path, sources: Path) -> None:
        publish_ok(index, sources, **changes)

    return setup


def edited(**changes: Any) -> Callable[[Index, Path, Path], None]:
    """Publish a good plugin, then change its version entry in the index."""

    def setup(index: Index, ws: Path, sources: Path) -> None:
        publish_ok(index, sources)
        edit_version(index, **changes)

    return setup


def not_an_archive(index: Index, ws: Path, sources: Path) -> None:
    index.add_archive("bad", "1.0.0", b"<html>oops</html>")


def not_json(index: Index, ws: Path, sources: Path) -> None:
    index.write(raw=b"<html>502</html>")


OFFLINE_PIP = {"pip_args": ["--no-index", "--find-links", "/nonexistent/wheels"]}
CASES = {
    "checksum-mismatch": Case(published(sha256="0" * 64), errors.ChecksumMismatch, "SHA-256 is"),
    "checksum-missing": Case(edited(sha256=None), errors.InvalidIndex, "sha256: required field is missing"),
    "truncated-download": Case(truncated, errors.DownloadFailed, "cut short|failed after"),
    "dotdot": Case(archive_with(("../evil", "file", "x")), errors.UnsafeArchive, r"'\.\./evil'"),
    "absolute-path": Case(archive_with(("/tmp/plughost-market-evil", "file", "x")), errors.UnsafeArchive, "absolute"),
    "symlink-out": Case(archive_with(("escape", "symlink", "../../../..")), errors.UnsafeArchive, "points out"),
    "zip-bomb": Case(zip_bomb, errors.UnsafeArchive, "more than the limit", settings={"max_unpacked_bytes": 1 << 20}),
    "not-an-archive": Case(not_an_archive, errors.UnsafeArchive, "neither a zip nor a tar"),
    "not-json": Case(not_json, errors.InvalidIndex, "is not JSON"),
    "unknown-field": Case(edited(mirror="x"), errors.InvalidIndex, r"versions\.0\.mirror: unknown field"),
    "not-semver": Case(edited(version="1.0"), errors.InvalidIndex, "not a semantic version"),
    "wrong-manifest": Case(edited(version="1.0.1"), errors.InvalidPackage, r"manifest says version 1\.0\.0"),
    "unknown-plugin": Case(published(), errors.NotInIndex, "no index offers", "ghost"),
    "unknown-version": Case(published(), errors.NotInIndex, r"no version 9\.9\.9", version="9.9.9"),
    "no-build": Case(published(platforms=["plan9/mips"]), errors.NoCompatibleVersion, "no build of any version for"),
    "dependency-cycle": Case(cycle, errors.DependencyConflict, "dependency cycle: bad -> other -> bad"),
    "pip-fails": Case(
        published(python=["plughost-no-such-package==1.0"]),
        errors.RequirementsFailed,
        "No matching distribution",
        settings=OFFLINE_PIP,
    ),
    "other-origin": Case(taken, errors.AlreadyExists, "already exists at .* not installed from the market"),
    "load-fails": Case(load_fails, errors.InstallLoadFailed, "no licence key"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_input_installs_nothing_and_the_host_keeps_serving(
    ws: Path, index: Index, tmp_path: Path, case: Case
) -> None:
    case.setup(index, ws, tmp_path / "src")
    market_config(ws, ("test", index.url), **case.settings)
    async with Host(ws) as host:
        market = Market.for_manager(host.manager)
        plugins_before, files_before = plugins_of(host), snapshot(ws / "plugins")
        with pytest.raises(case.error, match=case.words):
            await market.install(case.plugin_id, case.version)
        assert plugins_of(host) == plugins_before  # no plugin loaded, none lost
        assert snapshot(ws / "plugins") == files_before  # nothing half-installed
        assert await call(host, "keeper", "ping") == "pong"
        assert state_json(ws).get("installed", {}) == {}
        assert sorted(p.name for p in (ws / "data").iterdir()) == [p[0] for p in plugins_before]  # no new data dir
    staging = ws / ".plughost" / "market" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert not Path("/tmp/plughost-market-evil").exists() and not (ws / "evil").exists()


def freeze(chattr: str, directory: Path, on: bool) -> None:
    """`chattr +i`: nothing can be created, renamed or removed in `directory`, even by root."""
    subprocess.run([chattr, "+i" if on else "-i", str(directory)], check=True)


async def test_a_read_only_plugin_directory_installs_nothing(ws: Path, index: Index, tmp_path: Path) -> None:
    """The disk refusing (read-only, full) is reported as such; nothing changes."""
    chattr = require_tool("chattr", "makes a directory unwritable for root")
    publish_ok(index, tmp_path / "src")
    market_config(ws, ("test", index.url))
    async with Host(ws) as host:
        market = Market.for_manager(host.manager)
        before = snapshot(ws / "plugins")
        freeze(chattr, ws / "plugins", True)
        try:
            with pytest.raises(errors.CannotWrite, match="Operation not permitted"):
                await market.install("bad")
        finally:
            freeze(chattr, ws / "plugins", False)
        assert snapshot(ws / "plugins") == before and plugins_of(host)[0][0] == "keeper"
        assert state_json(ws).get("installed", {}) == {}
        assert (await market.install("bad")).changes[0].state == "enabled"  # writable again: it works


async def test_a_new_version_that_fails_to_load_leaves_the_old_one_serving(
    ws: Path, index: Index, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    index.publish(python_plugin(src, "app", "1.0.0"))
    market_config(ws, ("test", index.url))
    async with Host(ws) as host:
        market = Market.for_manager(host.manager)
        await market.install("app")
        before = snapshot(ws / "plugins")
        index.publish(python_plugin(src, "app", "2.0.0", code="\nraise ImportError('broken build')\n"))
        with pytest.raises(errors.InstallLoadFailed, match=r"broken build.*previous version keeps serving"):
            await market.update("app")
        assert await call(host, "app") == "1.0.0"
        assert snapshot(ws / "plugins") == before
        assert state_json(ws)["installed"]["app"]["version"] == "1.0.0"
        assert market.installed().plugins[0].kept_versions == []


async def test_another_index_cannot_replace_what_one_installed(
    ws: Path, http_server: FileServer, tmp_path: Path
) -> None:
    first, second = Index(http_server, "origin-a"), Index(http_server, "origin-b")
    first.publish(python_plugin(tmp_path / "a", "dup", "1.0.0"))
    second.publish(python_plugin(tmp_path / "b", "dup", "2.0.0"))
    market_config(ws, ("a", first.url))
    await Market(ws, config=HostConfig.load(ws)).install("dup")
    first.write({"plugins": []})  # index a drops it; b (higher priority) offers it
    (ws / "plughost.toml").write_text(
        f'[market]\ncache_ttl_s = 0\n[[market.indexes]]\nname = "a"\nurl = "{first.url}"\n'
        f'[[market.indexes]]\nname = "b"\nurl = "{second.url}"\npriority = 10\n'
    )
    market = Market(ws, config=HostConfig.load(ws))
    with pytest.raises(errors.AlreadyExists, match="installed from index 'a'"):
        await market.update("dup")
    with pytest.raises(errors.AlreadyExists, match="installed from index 'a'"):
        await market.install("dup", "2.0.0")


# python requirements ------------------------------------------------------------------------------------------
def wheel(directory: Path, name: str, version: str, code: str) -> None:
    """A pure-Python wheel, made by hand (pip installs it offline with --no-index --find-links)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: plughost-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


async def test_python_requirements_go_to_the_plugins_own_site_dir(ws: Path, index: Index, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheel(wheels, "plughost_tinydep", "1.0", "VALUE = 'tiny 1.0'\n")
    wheel(wheels, "plughost_tinydep", "2.0", "VALUE = 'tiny 2.0'\n")
    code = "\n@plugin.method()\ndef dep() -> str:\n    import plughost_tinydep\n    return plughost_tinydep.VALUE\n"
    src = tmp_path / "src"
    index.publish(python_plugin(src, "uses-dep", "1.0.0", python=("plughost_tinydep==1.0",), code=code))
    market_config(ws, ("test", index.url), pip_args=["--no-index", "--find-links", str(wheels)])
    assert importlib.util.find_spec("plughost_tinydep") is None  # not in the host's environment
    site = ws / "plugins" / "uses-dep" / ".site"
    async with Host(ws) as host:
        market = Market.for_manager(host.manager)
        await market.install("uses-dep")
        assert await call(host, "uses-dep", "dep") == "tiny 1.0"
        assert (site / "plughost_tinydep" / "__init__.py").is_file() and str(site) in sys.path

        index.publish(python_plugin(src, "uses-dep", "1.1.0", python=("plughost_tinydep==2.0",), code=code))
        await market.update("uses-dep")
        assert await call(host, "uses-dep", "dep") == "tiny 2.0"  # the new version imports its own
        await market.rollback("uses-dep")
        assert await call(host, "uses-dep", "dep") == "tiny 1.0"

        await market.uninstall("uses-dep")
        assert str(site) not in sys.path and "plughost_tinydep" not in sys.modules
    venv_site = Path(importlib.util.find_spec("pydantic").origin or "").parents[1]  # type: ignore[union-attr]
    assert not list(venv_site.glob("plughost_tinydep*"))


# without a host, signatures, the cache ---------------------------------------------------------------------
async def test_without_a_host_the_files_change_and_the_next_host_loads_them(
    ws: Path, index: Index, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        index.publish(python_plugin(src, "app", number))
    market_config(ws, ("test", index.url), keep_versions=1)
    market = Market(ws, config=HostConfig.load(ws))
    await market.install("app", "1.0.0", enable=False)
    assert "app = false" in (ws / "plugin-state.toml").read_text()
    await market.install("app", "1.1.0")
    await market.update("app")
    assert market.installed().plugins[0].kept_versions == ["1.1.0"]  # keep_versions = 1
    async with Host(ws) as host:
        assert plugins_of(host) == [("app", "1.2.0", "disabled"), ("keeper", "1.0.0", "enabled")]
    assert (await market.rollback("app")).version == "1.1.0"
    with pytest.raises(errors.NoPreviousVersion, match=r"version 1\.0\.0 of 'app' is not kept"):
        await market.rollback("app", "1.0.0")
    await market.uninstall("app")
    assert "app" not in (ws / "plugin-state.toml").read_text()


async def test_signed_indexes_are_checked(ws: Path, index: Index, tmp_path: Path) -> None:
    private, public = generate_key()
    publish_ok(index, tmp_path / "src")
    data = (index.dir / "index.json").read_bytes()
    (index.dir / "index.json.sig").write_text(sign(data, private))
    (ws / "plughost.toml").write_text(
        f'[market]\ncache_ttl_s = 0\n[[market.indexes]]\nname = "signed"\nurl = "{index.url}"\n'
        f'signed_by = ["release"]\n[market.trusted_keys]\nrelease = "{public}"\n'
    )
    market = Market(ws, config=HostConfig.load(ws))
    assert (await market.refresh()).indexes[0].signed_by == "release"
    (index.dir / "index.json").write_bytes(data.replace(b"the bad plugin", b"the evil plugin"))
    refreshed = await market.refresh()  # refused; the verified cached copy is used instead
    assert refreshed.indexes[0].source == "cache" and "not valid for key(s) release" in refreshed.warnings[0]
    shutil.rmtree(ws / ".plughost" / "market" / "indexes")
    with pytest.raises(errors.InvalidIndex, match="not valid for key"):
        await market.install("bad")
    (index.dir / "index.json.sig").unlink()
    with pytest.raises(errors.InvalidIndex, match="has no signature"):
        await market.install("bad")
    assert not (ws / "plugins" / "bad").exists()


async def test_an_unreachable_index_is_read_from_its_cache_with_a_warning(ws: Path, tmp_path: Path) -> None:
    with FileServer(tmp_path / "served") as server:
        (tmp_path / "served").mkdir(exist_ok=True)
        local = Index(server, "gone-soon")
        publish_ok(local, tmp_path / "src")
        market_config(ws, ("soon", local.url))
        market = Market(ws, config=HostConfig.load(ws))
        assert (await market.refresh()).indexes[0].source == "network"
    result = await market.refresh()
    assert result.indexes[0].source == "cache" and "using the copy cached at" in result.warnings[0]
    found = await market.search("bad")
    assert [h.id for h in found.results] == ["bad"] and "using the copy cached" in found.warnings[0]
    shutil.rmtree(ws / ".plughost" / "market" / "indexes")
    with pytest.raises(errors.IndexUnavailable, match="cannot be read"):
        await market.install("bad")


async def test_search_and_info(ws: Path, index: Index, tmp_path: Path) -> None:
    src = tmp_path / "src"
    index.publish(python_plugin(src, "weather", "1.0.0"))
    index.publish(python_plugin(src, "weather", "2.0.0-rc.1"))
    index.publish(python_plugin(src, "weather-alerts", "0.1.0"), platforms=["plan9/mips"])
    index.publish(python_plugin(src, "dice", "1.0.0"))
    market_config(ws, ("test", index.url))
    market = Market(ws, config=HostConfig.load(ws))
    found = await market.search("weather")
    assert [h.id for h in found.results] == ["weather", "weather-alerts"] and found.total == 2
    assert (await market.search("", limit=1)).total == 3
    assert [h.id for h in (await market.search("", tag="nope")).results] == []
    info = await market.info("weather")
    assert info.latest == "1.0.0" and [v.version for v in info.versions] == ["2.0.0-rc.1", "1.0.0"]
    alerts = await market.info("weather-alerts")
    assert alerts.latest is None and "no build for" in (alerts.versions[0].why_not or "")
    with pytest.raises(errors.NotInIndex):
        await market.info("weather", "3.0.0")


def test_a_market_constructs_without_a_loop_and_without_io(tmp_path: Path) -> None:
    market = Market(tmp_path / "nowhere")
    assert market.settings.indexes == [] and not (tmp_path / "nowhere").exists()
    with pytest.raises(errors.NotInstalled):
        market.history("anything")


async def test_an_archive_server_that_hangs_up_before_answering_is_asked_again(
    ws: Path, index: Index, tmp_path: Path
) -> None:
    entry = publish_ok(index, tmp_path / "src")
    edit_version(index, url=f"{index.server.url}/hangup-2/{index.dir.name}/{entry['url']}")
    market_config(ws, ("test", index.url))
    async with Host(ws) as host:
        report = await Market.for_manager(host.manager).install("bad")
        assert [(c.id, c.action, c.state) for c in report.changes] == [("bad", "install", "enabled")]
