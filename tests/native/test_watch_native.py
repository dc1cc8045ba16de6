"""Hot reload of native plugins: a replaced library, a new `-v<version>` file beside it, and its
removal, watched with real watchfiles on libraries compiled with gcc."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost import PluginManager
from plughost.sdk.models import EventType
from tests.conftest import require_tool
from tests.core.watching import Events, answer
from tests.native.conftest import SDK

ANSWER_C = r"""
#include "plughost_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reply(cliproxy_buffer *resp, const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    memcpy(out, text, n + 1);
    resp->ptr = out;
    resp->len = n;
    return 0;
}

static void answer_free(void *ptr, size_t len) { (void)len; free(ptr); }

static int answer_call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    (void)req; (void)len;
    if (method && (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure")))
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"answer\","
                           "\"Version\":\"1.0.0\",\"Author\":\"qa\",\"GitHubRepository\":\"https://example.invalid/a\"},"
                           "\"capabilities\":{\"executor\":true}}}");
    if (method && !strcmp(method, "value")) return reply(resp, "{\"ok\":true,\"result\":\"" ANSWER "\"}");
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method\"}}");
}

CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin) {
    if (host == NULL || host->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 2;
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    plugin->call = answer_call;
    plugin->free_buffer = answer_free;
    plugin->shutdown = NULL;
    return 0;
}
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same small plugin compiled twice, answering "first" and "second"."""
    gcc = require_tool("gcc", "the native hot-reload test compiles two variants of a C plugin")
    out = tmp_path_factory.mktemp("answer-c")
    source = out / "answer.c"
    source.write_text(ANSWER_C)
    libs = {}
    for variant in ("first", "second"):
        lib = libs[variant] = out / f"{variant}.so"
        command = [gcc, "-std=gnu11", "-O2", "-Wall", "-shared", "-fPIC", f"-I{SDK}", f'-DANSWER="{variant}"']
        subprocess.run([*command, "-o", str(lib), str(source)], check=True, capture_output=True, timeout=120)
    return libs


@pytest.fixture
async def manager(tmp_path: Path, answers: dict[str, Path]) -> AsyncIterator[PluginManager]:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plughost.toml").write_text("[host]\nreload_debounce_ms = 150\nentry_points = false\n")
    shutil.copyfile(answers["first"], tmp_path / "plugins" / "answer.so")
    async with PluginManager(tmp_path) as manager:
        assert await manager.discover_and_load_all() == 1
        await manager.watch()
        yield manager


def replace(target: Path, source: Path) -> None:
    """Overwrite `target` in place, as `cp` does."""
    target.write_bytes(source.read_bytes())


async def test_a_replaced_library_reloads(manager: PluginManager, tmp_path: Path, answers: dict[str, Path]) -> None:
    events = Events(manager)
    plugins = tmp_path / "plugins"
    assert await answer(manager, "answer") == "first"

    replace(plugins / "answer.so", answers["second"])
    await events.wait("answer", EventType.RELOAD, check=lambda e: e.success)
    assert await answer(manager, "answer") == "second"

    since = events.mark()  # a higher version beside it takes over
    shutil.copyfile(answers["first"], plugins / "answer-v3.0.0.so")
    await events.wait("answer", EventType.RELOAD, since, check=lambda e: e.success)
    instance = manager.get_plugin("answer")
    assert instance is not None and instance.manifest.version == "3.0.0"
    assert instance.path.name == "answer-v3.0.0.so"
    assert await answer(manager, "answer") == "first"

    since = events.mark()  # its manifest beside it is part of it
    manifest = 'id = "answer"\nversion = "3.0.0"\nruntime = "native"\ndescription = "the answer"\n'
    (plugins / "answer.plugin.toml").write_text(manifest)
    await events.wait("answer", EventType.RELOAD, since, check=lambda e: e.success)
    assert manager.get_plugin("answer").manifest.description == "the answer"  # type: ignore[union-attr]

    since = events.mark()  # every library gone: unloaded
    (plugins / "answer-v3.0.0.so").unlink()
    (plugins / "answer.so").unlink()
    await events.wait("answer", EventType.UNLOAD, since)
    await manager.watcher.settled()
    assert manager.get_plugin("answer") is None
