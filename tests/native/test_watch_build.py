"""Hot reload of plugins built from source (C with a Makefile, Rust with a Cargo.toml, Go with
Jank's scripts/build.sh), each the `plughost new --lang` scaffold: saving a source builds it again
and reloads it once (what the build writes, the library or binary and the compiler's temporary
files, is not a second change); a save that does not compile keeps the running version serving
and reports the compiler's output; the fix builds and reloads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plughost import PluginManager
from plughost.cli.scaffold_native import write_native_plugin
from plughost.errors import PluginLoadError
from plughost.runtime.base import Candidate
from plughost.runtime.builds import build_argv
from plughost.runtime.native.runtime import NativeRuntime
from plughost.sdk.manifest import PluginManifest
from plughost.sdk.models import DiscoveryStatus, EventType
from tests.conftest import PluginWriter, require_tool
from tests.core.watching import VERSIONED, Events, answer, save


@dataclass(frozen=True)
class Scaffold:
    tools: tuple[str, ...]
    source: str  # the file saved
    greeting: str  # how the source spells the method's greeting, "hello" in it
    breaks: tuple[str, str]  # a change that does not compile: this text becomes that
    says: str  # what the compiler says of it


SCAFFOLDS = {
    "c": Scaffold(("gcc", "make"), "plugin.c", '\\"greeting\\":\\"hello, %s\\"',
                  ("? name : ", "? nam : "), "undeclared"),
    "rust": Scaffold(("cargo", "rustc"), "src/lib.rs", '"greeting":"hello, {}"',
                     ('json_text(request, "name")', 'json_txt(request, "name")'), "json_txt"),
    "go": Scaffold(("go",), "main.go", '"greeting": "hello, " + name', ("+ name}", "+ nam}"), "undefined: nam"),
}  # fmt: skip
PLUGIN = "greet-src"


@pytest.fixture(params=list(SCAFFOLDS))
async def manager(
    request: pytest.FixtureRequest, workspace: Path, write_plugin: PluginWriter
) -> AsyncIterator[tuple[PluginManager, str]]:
    """The scaffold of one language (built as its test builds it; a Go plugin by the host on load)
    and a Python `marker`, loaded and watched."""
    language: str = request.param
    for tool in SCAFFOLDS[language].tools:
        require_tool(tool, f"the {language} plugin is built from its sources")
    if language == "go" and not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        message = "golang-github-hashicorp-go-plugin-dev is not installed (apt-get install it)"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)
    (workspace / "plughost.toml").write_text(
        '[host]\nreload_debounce_ms = 150\nentry_points = false\n[process]\nsocket_dir = "run"\n'
    )
    directory = workspace / "plugins" / PLUGIN
    (directory / "tests").mkdir(parents=True)
    write_native_plugin(directory, language, PLUGIN, PLUGIN, "test_greet_src.py")
    build = build_argv(directory)
    if language != "go" and build is not None:  # as its generated test does (the host builds a Go plugin itself)
        env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
        built = await asyncio.create_subprocess_exec(*build, cwd=directory, env=env)
        assert await asyncio.wait_for(built.wait(), 600) == 0
    write_plugin("marker", VERSIONED.format(value="marker 1"))
    async with PluginManager(workspace) as manager:
        assert await manager.discover_and_load_all() == 2
        await manager.watch()
        yield manager, language


async def greeting(manager: PluginManager) -> object:
    result = await manager.execute(PLUGIN, "hello", {"name": "Ada"})
    assert result.success, result.error
    assert isinstance(result.result, dict)
    return result.result["greeting"]


async def test_a_saved_source_is_built_again_and_reloaded_once(
    manager: tuple[PluginManager, str], workspace: Path
) -> None:
    host, language = manager
    scaffold = SCAFFOLDS[language]
    events = Events(host)
    source = workspace / "plugins" / PLUGIN / scaffold.source
    assert await greeting(host) == "hello, Ada"

    since = events.mark()
    assert scaffold.greeting in source.read_text()
    save(source, source.read_text().replace(scaffold.greeting, scaffold.greeting.replace("hello", "hi")))
    await events.wait(PLUGIN, EventType.RELOAD, since)
    assert await greeting(host) == "hi, Ada"  # the new source, not the old build

    # the marker's reload comes after every change the OS reported before it: what the build wrote
    # did not reload the plugin a second time
    marked = events.mark()
    save(workspace / "plugins" / "marker" / "plugin.py", VERSIONED.format(value="marker 2"))
    await events.wait("marker", EventType.RELOAD, marked)
    await host.watcher.settled()
    assert len(events.of(PLUGIN, EventType.RELOAD, since)) == 1
    assert await answer(host, "marker") == "marker 2"

    # a save that does not compile: reported with the compiler's output; the running version serves
    broken = events.mark()
    working = source.read_text()
    assert scaffold.breaks[0] in working
    save(source, working.replace(*scaffold.breaks))
    failed = await events.wait(PLUGIN, EventType.ERROR, broken)
    assert "build failed" in (failed.error or "") and scaffold.says in (failed.error or ""), failed.error
    assert await greeting(host) == "hi, Ada"
    assert not events.of(PLUGIN, EventType.RELOAD, broken)

    fixed = events.mark()  # the fix builds and reloads
    save(source, working.replace(scaffold.greeting.replace("hello", "hi"), scaffold.greeting.replace("hello", "hey")))
    await events.wait(PLUGIN, EventType.RELOAD, fixed)
    assert await greeting(host) == "hey, Ada"


async def test_a_library_without_a_build_file_is_not_built(tmp_path: Path) -> None:
    """A library dropped in with its manifest (no Makefile or Cargo.toml) reloads as it is: there is
    nothing to build, and asking for a build says why instead of running anything."""
    (tmp_path / "answer.so").write_bytes(b"")
    manifest = PluginManifest(id="answer", version="1.0.0", runtime="native", entry="answer.so")
    candidate = Candidate("answer", tmp_path, manifest, DiscoveryStatus.AVAILABLE, str(tmp_path))
    runtime = NativeRuntime()
    assert runtime.build_outputs(candidate) == ()
    with pytest.raises(PluginLoadError, match=r"only a plugin directory with a Makefile or Cargo\.toml is built"):
        await runtime.build(candidate)
    (tmp_path / "Makefile").write_text("answer.so:\n\ttouch answer.so\n")
    assert runtime.build_outputs(candidate) == ((tmp_path / "answer.so").resolve(),)  # beside its sources
