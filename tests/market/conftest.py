"""A real HTTP server on 127.0.0.1 serving test indexes and archives, and helpers to publish plugins."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import tarfile
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from plughost.market.pack import pack_plugin


class _Handler(SimpleHTTPRequestHandler):
    """Files below the server's directory; `/truncated/<path>` announces the whole file and sends half;
    `/hangup-<n>/<path>` closes the first n connections asking for it without answering."""

    hung_up: ClassVar[Counter[str]] = Counter()

    def do_GET(self) -> None:
        if self.path.startswith("/hangup-"):
            times, _, rest = self.path.removeprefix("/hangup-").partition("/")
            if self.hung_up[rest] < int(times):
                self.hung_up[rest] += 1
                self.close_connection = True
                return
            self.path = "/" + rest
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a busy test machine must not see refused connections (the default is 5)


class FileServer:
    """`http.server` in a thread, serving `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="market-test-http", daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with FileServer(tmp_path_factory.mktemp("market-http")) as server:
        yield server


class Index:
    """One index document served over HTTP, with its archives beside it."""

    def __init__(self, server: FileServer, name: str) -> None:
        self.dir = server.root / name
        self.dir.mkdir(parents=True)
        self.server = server
        self.url = f"{server.url}/{name}/index.json"
        self.plugins: dict[str, dict[str, Any]] = {}
        self.write()

    def publish(self, source: Path, **changes: Any) -> dict[str, Any]:
        """Pack `source` beside the index and list it; `changes` alter the version entry."""
        packed = pack_plugin(source, self.dir)
        version = {**packed.entry["versions"][0], **changes}
        version = {k: v for k, v in version.items() if v is not None}
        entry = self.plugins.setdefault(packed.entry["id"], {**packed.entry, "versions": []})
        entry["versions"] = [v for v in entry["versions"] if v["version"] != version["version"]] + [version]
        self.write()
        return version

    def add_archive(self, plugin_id: str, version: str, data: bytes, **changes: Any) -> dict[str, Any]:
        """List a hand-made archive (its real SHA-256 unless `changes` says otherwise)."""
        name = f"{plugin_id}-{version}-{len(self.plugins)}.bin"
        (self.dir / name).write_bytes(data)
        entry = {"version": version, "url": name, "sha256": hashlib.sha256(data).hexdigest(), **changes}
        self.plugins.setdefault(plugin_id, {"id": plugin_id, "versions": []})["versions"].append(entry)
        self.write()
        return entry

    def write(self, document: Any = None, raw: bytes | None = None) -> None:
        path = self.dir / "index.json"
        if raw is not None:
            path.write_bytes(raw)
            return
        path.write_text(json.dumps(document or {"plugins": list(self.plugins.values())}, indent=1), encoding="utf-8")


@pytest.fixture
def index(http_server: FileServer, request: pytest.FixtureRequest) -> Index:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return Index(http_server, name)


def python_plugin(
    parent: Path,
    plugin_id: str,
    version: str,
    *,
    deps: tuple[str, ...] = (),
    python: tuple[str, ...] = (),
    code: str = "",
    manifest: str = "",
) -> Path:
    """A plugin answering `version()` with its version (and whatever `code` adds)."""
    directory = parent / f"{plugin_id}-{version}"
    directory.mkdir(parents=True)
    lines = [f'id = "{plugin_id}"', f'version = "{version}"', f'description = "the {plugin_id} plugin"']
    lines += ['tags = ["test"]', manifest]
    if deps or python:
        lines += ["[dependencies]", f"plugins = {json.dumps(list(deps))}", f"python = {json.dumps(list(python))}"]
    (directory / "plugin.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = f"""
        from plughost import Plugin

        plugin = Plugin()
        VERSION = "{version}"

        @plugin.method()
        def version() -> str:
            return VERSION
        """
    (directory / "plugin.py").write_text(textwrap.dedent(body) + textwrap.dedent(code), encoding="utf-8")
    return directory


def market_config(workspace: Path, *indexes: tuple[str, str], **settings: Any) -> None:
    """Write plughost.toml with a [market] table naming `indexes` ((name, url) …)."""
    import tomli_w

    market: dict[str, Any] = {"cache_ttl_s": 0, **settings}
    market["indexes"] = [{"name": name, "url": url} for name, url in indexes]
    (workspace / "plughost.toml").write_text(tomli_w.dumps({"market": market}), encoding="utf-8")


def tar_archive(members: list[tuple[str, str, bytes | str]]) -> bytes:
    """A tar.gz of (name, kind, content) with kind file, dir or symlink (content: the link target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, kind, content in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(content)
                tar.addfile(info)
            else:
                data = content.encode() if isinstance(content, str) else content
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def valid_members(plugin_id: str, version: str) -> list[tuple[str, str, bytes | str]]:
    """The files of a loadable Python plugin (to add a bad member to)."""
    manifest = f'id = "{plugin_id}"\nversion = "{version}"\n'
    code = "from plughost import Plugin\nplugin = Plugin()\n"
    return [("plugin.toml", "file", manifest), ("plugin.py", "file", code)]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path below `directory` (files with their bytes), to show nothing changed."""
    found: dict[str, bytes | None] = {}
    if not directory.exists():
        return found
    for path in sorted(directory.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        key = str(path.relative_to(directory))
        found[key] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found
