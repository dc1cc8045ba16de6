"""The real `plughost market` CLI against a real `plughost run`: a Python plugin, a native C plugin (built with
gcc) and a Go process plugin are installed, updated, rolled back and uninstalled, and the host serves each
version without a restart. Also: the CLI without a host, and `plughost pack`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXAMPLES, require_tool
from tests.market.conftest import FileServer, Index, market_config, python_plugin
from tests.test_cli import HostProcess, plughost

ROOT = Path(__file__).resolve().parents[2]

C_PLUGIN = r"""
#include "plughost_plugin.h"
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

static int call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    (void)req; (void)len;
    if (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure"))
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"cver\","
                           "\"Version\":\"" VERSION "\",\"Author\":\"tests\",\"GitHubRepository\":\"https://x.invalid\"},"
                           "\"capabilities\":{\"executor\":true}}}");
    if (!strcmp(method, "version")) return reply(resp, "{\"ok\":true,\"result\":\"" VERSION "\"}");
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method\"}}");
}

static void release(void *ptr, size_t len) { (void)len; free(ptr); }
static void stop(void) {}

CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin) {
    if (host == NULL || host->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 2;
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    plugin->call = call;
    plugin->free_buffer = release;
    plugin->shutdown = stop;
    return 0;
}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    with FileServer(tmp_path_factory.mktemp("shop-http")) as server:
        yield Index(server, "shop")


@pytest.fixture(scope="module")
def host(shop: Index, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    workspace = tmp_path_factory.mktemp("cli-market") / "ws"
    (workspace / "plugins").mkdir(parents=True)
    market_config(workspace, ("shop", shop.url))
    with HostProcess(workspace) as running:
        yield running


def run(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return plughost(*args, "-w", str(workspace), timeout=120)


def ok(workspace: Path, *args: str) -> str:
    done = run(workspace, *args)
    assert done.returncode == 0, f"plughost {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def call(workspace: Path, plugin_id: str, method: str, args: dict[str, Any] | None = None) -> Any:
    extra = ["--args", json.dumps(args)] if args is not None else []
    return json.loads(ok(workspace, "plugins", "execute", plugin_id, method, *extra, "--json"))["result"]


def test_a_python_plugin_through_a_running_host(host: HostProcess, shop: Index, tmp_path: Path) -> None:
    ws = host.workspace
    src = tmp_path / "src"
    shop.publish(python_plugin(src, "greeter", "1.0.0"))
    done = run(ws, "market", "install", "greeter")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "installed greeter 1.0.0 (enabled)\n"
    assert "via the running host" in done.stderr
    assert call(ws, "greeter", "version") == "1.0.0"  # loaded by the host, no restart

    shop.publish(python_plugin(src, "greeter", "1.1.0"))
    assert ok(ws, "market", "update", "greeter") == "updated greeter 1.0.0 → 1.1.0 (enabled)\n"
    assert call(ws, "greeter", "version") == "1.1.0"
    assert ok(ws, "market", "rollback", "greeter") == "rolled greeter back from 1.1.0 to 1.0.0 (enabled)\n"
    assert call(ws, "greeter", "version") == "1.0.0"
    history = json.loads(ok(ws, "market", "history", "greeter", "--json"))
    assert [(e["action"], e["version"]) for e in history["entries"]] == [
        ("install", "1.0.0"), ("update", "1.1.0"), ("rollback", "1.0.0")
    ]  # fmt: skip
    listed = json.loads(ok(ws, "market", "list", "--json"))["plugins"]
    assert [(r["id"], r["version"], r["latest"], r["kept_versions"]) for r in listed if r["id"] == "greeter"] == [
        ("greeter", "1.0.0", "1.1.0", ["1.1.0"])
    ]

    shop.publish(python_plugin(src, "shady", "1.0.0"), sha256="0" * 64)
    refused = run(ws, "market", "install", "shady")
    assert refused.returncode == 1
    assert "error: download of shady 1.0.0" in refused.stderr and "SHA-256 is" in refused.stderr
    assert "answered" not in refused.stderr  # the market's own error, as without a host
    assert call(ws, "greeter", "version") == "1.0.0"  # the host is unaffected

    assert ok(ws, "market", "uninstall", "greeter") == "uninstalled greeter 1.0.0\n"
    listed = json.loads(ok(ws, "plugins", "list", "--json"))
    assert "greeter" not in [row["id"] for row in listed] and not (ws / "plugins" / "greeter").exists()


def build_c(tmp_path: Path, version: str) -> Path:
    gcc = require_tool("gcc", "the native market plugin is compiled with gcc")
    directory = tmp_path / f"cver-{version}"
    directory.mkdir(parents=True)
    source = tmp_path / "cver.c"
    source.write_text(C_PLUGIN)
    command = [
        gcc,
        "-std=gnu11",
        "-O2",
        "-Wall",
        "-shared",
        "-fPIC",
        f"-I{ROOT / 'sdk' / 'c'}",
        f'-DVERSION="{version}"',
    ]
    subprocess.run([*command, "-o", str(directory / "libcver.so"), str(source)], check=True, capture_output=True)
    (directory / "plugin.toml").write_text(
        f'id = "cver"\nversion = "{version}"\nruntime = "native"\nentry = "libcver.so"\n'
    )
    return directory


def test_a_native_c_plugin_through_a_running_host(host: HostProcess, shop: Index, tmp_path: Path) -> None:
    ws = host.workspace
    shop.publish(build_c(tmp_path, "1.0.0"))  # platforms: this machine's
    assert ok(ws, "market", "install", "cver") == "installed cver 1.0.0 (enabled)\n"
    assert call(ws, "cver", "version") == "1.0.0"
    shop.publish(build_c(tmp_path, "2.0.0"))
    ok(ws, "market", "update", "cver")
    assert call(ws, "cver", "version") == "2.0.0"  # the new library, loaded beside the old one
    ok(ws, "market", "rollback", "cver")
    assert call(ws, "cver", "version") == "1.0.0"
    ok(ws, "market", "uninstall", "cver")


def build_go(tmp_path: Path) -> Path:
    """examples/go/jank-echo built in GOPATH mode (as tests/process/conftest.py does)."""
    require_tool("go", "the process market plugin is a go-plugin executable")
    if not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        message = "golang-github-hashicorp-go-plugin-dev is not installed (apt-get install it)"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)
    source = tmp_path / "jank-echo-src"
    shutil.copytree(EXAMPLES / "go" / "jank-echo", source, ignore=shutil.ignore_patterns("bin"))
    env = {**os.environ, "GOPATH": str(tmp_path / "gopath")}
    build = ["sh", "scripts/build.sh"]
    built = subprocess.run(build, cwd=source, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    return source / "bin" / "jank-echo"


def go_plugin(tmp_path: Path, binary: Path, version: str) -> Path:
    directory = tmp_path / f"jank-echo-{version}"
    (directory / "bin").mkdir(parents=True)
    shutil.copy2(binary, directory / "bin" / "jank-echo")
    manifest = json.loads((EXAMPLES / "go" / "jank-echo" / "plugin.json").read_text())
    (directory / "plugin.json").write_text(json.dumps(manifest | {"version": version}))
    return directory


def test_a_go_process_plugin_through_a_running_host(host: HostProcess, shop: Index, tmp_path: Path) -> None:
    ws = host.workspace
    binary = build_go(tmp_path)
    shop.publish(go_plugin(tmp_path, binary, "1.0.0"))
    assert ok(ws, "market", "install", "com.example.jank-echo") == "installed com.example.jank-echo 1.0.0 (enabled)\n"
    assert os.access(ws / "plugins" / "com.example.jank-echo" / "bin" / "jank-echo", os.X_OK)  # mode kept
    assert call(ws, "com.example.jank-echo", "echo", {"word": "hi"}) == {"word": "hi"}
    shop.publish(go_plugin(tmp_path, binary, "1.1.0"))
    ok(ws, "market", "update", "com.example.jank-echo")
    info = json.loads(ok(ws, "plugins", "info", "com.example.jank-echo", "--json"))
    assert (info["version"], info["state"]) == ("1.1.0", "enabled")
    assert call(ws, "com.example.jank-echo", "echo", {"n": 2}) == {"n": 2}  # the new process answers
    ok(ws, "market", "rollback", "com.example.jank-echo")
    info = json.loads(ok(ws, "plugins", "info", "com.example.jank-echo", "--json"))
    assert (info["version"], info["state"]) == ("1.0.0", "enabled")
    assert call(ws, "com.example.jank-echo", "echo", {"n": 3}) == {"n": 3}
    ok(ws, "market", "uninstall", "com.example.jank-echo", "--purge")
    assert not (ws / "plugins" / "com.example.jank-echo").exists()


def test_without_a_host_the_cli_changes_the_workspace(shop: Index, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "plugins").mkdir(parents=True)
    market_config(ws, ("shop", shop.url))
    shop.publish(python_plugin(tmp_path / "src", "offline", "1.0.0"))
    done = run(ws, "market", "install", "offline", "--no-enable", "--json")
    assert done.returncode == 0, done.stderr
    assert "no running host: working on the workspace's files" in done.stderr
    assert json.loads(done.stdout)["changes"][0]["id"] == "offline"
    assert "offline = false" in (ws / "plugin-state.toml").read_text()
    found = json.loads(ok(ws, "market", "search", "offline", "--json"))
    assert found["results"][0]["installed"] == "1.0.0"
    missing = run(ws, "market", "rollback", "offline")
    assert missing.returncode == 1 and "no earlier version of 'offline' is kept" in missing.stderr
    assert ok(ws, "market", "uninstall", "offline") == "uninstalled offline 1.0.0\n"


def test_pack_prints_an_index_entry_that_installs(tmp_path: Path, http_server: FileServer) -> None:
    source = python_plugin(tmp_path / "src", "packed", "2.1.0", deps=("helper>=1",), python=("requests>=2",))
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "plugin.cpython-311.pyc").write_bytes(b"junk")
    (source / ".site").mkdir()
    out = tmp_path / "dist"
    done = plughost("pack", str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    version = entry["versions"][0]
    assert (entry["id"], version["version"], version["url"]) == ("packed", "2.1.0", "packed-2.1.0.tar.gz")
    assert version["dependencies"] == ["helper>=1"] and version["python"] == ["requests>=2"]
    archive = out / "packed-2.1.0.tar.gz"
    import hashlib
    import tarfile

    assert version["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["plugin.toml", "plugin.py"]  # no caches, no .site
    again = plughost("pack", str(source), "--out", str(tmp_path / "again"))
    assert json.loads(again.stdout)["versions"][0]["sha256"] == version["sha256"]  # reproducible
