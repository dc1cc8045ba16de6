"""`plughost.cli.quick`: which command lines it takes, its HTTP/1.1 client against real sockets, and the
list read from the files printed exactly as the full command prints it (see also tests/manage/test_cli_quick.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from plughost.cli.quick import ListRequest, http_get, parse
from tests.conftest import EXAMPLES
from tests.test_cli import LISTED, PLUGHOST, cli_env


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    return target


def test_parse_takes_plugins_list_with_the_options_it_understands(tmp_path: Path) -> None:
    ws = str(tmp_path)
    assert parse(["plugins", "list", "-w", ws]) == ListRequest(tmp_path)
    assert parse(
        ["-w", ws, "plugins", "-l", "Error", "list", "--json", "--load", "--remote=http://h:1", "--key", "k"]
    ) == (ListRequest(tmp_path, "http://h:1", "k", as_json=True, load=True))
    assert parse(["plugins", "list", f"-w{ws}", "--workspace", ws]) == ListRequest(tmp_path)
    # a value that starts with "-" (a generated key can): the next word, as click takes it
    assert parse(["plugins", "list", "-w", ws, "--key", "-k3y"]) == ListRequest(tmp_path, None, "-k3y")
    for argv in (
        ["plugins", "info", "x"],
        ["plugins", "list", "--local"],
        ["plugins", "list", "-p", ws],
        ["plugins", "list", "-l", "info"],
        ["plugins", "list", "--key"],
        ["plugins", "--json", "list"],  # a list option before `list`: click refuses it
        ["plugins", "list", "--", "x"],
        ["plugins", "list", "-h"],
        ["plugins"],
        ["plugins", "list", "-w", str(tmp_path / "missing")],
    ):
        assert parse(argv) is None, argv


class OneAnswer:
    """A real TCP server that reads one request and sends `answer` (then closes)."""

    def __init__(self, answer: bytes) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.request = b""
        self._answer = answer
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            while b"\r\n\r\n" not in self.request:
                self.request += connection.recv(4096)
            connection.sendall(self._answer)

    def close(self) -> None:
        self._thread.join(timeout=10)
        self.server.close()


@pytest.fixture
def serve() -> Iterator[list[OneAnswer]]:
    servers: list[OneAnswer] = []
    yield servers
    for server in servers:
        server.close()


def test_http_get_reads_content_length_chunked_and_to_the_close(serve: list[OneAnswer]) -> None:
    body = b'{"plugins": []}'
    answers = {
        b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n" + body: (200, body),
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{"plu\r\na\r\ngins": []}\r\n0\r\n\r\n': (
            200,
            body,
        ),
        b"HTTP/1.0 401 Unauthorized\r\n\r\n" + body: (401, body),
    }
    for answer, expected in answers.items():
        server = OneAnswer(answer)
        serve.append(server)
        assert http_get(server.url, "/api/v1/plugins", "s3cret") == expected
        assert server.request.startswith(b"GET /api/v1/plugins HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"\r\nAuthorization: Bearer s3cret\r\n" in server.request and b"Connection: close" in server.request


def test_http_get_refuses_a_cut_or_foreign_answer(serve: list[OneAnswer]) -> None:
    for answer in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ):
        server = OneAnswer(answer)
        serve.append(server)
        with pytest.raises(ValueError):
            http_get(server.url, "/api/v1/plugins", None)


def run(*args: str, full: bool = False) -> subprocess.CompletedProcess[str]:
    env = cli_env(PLUGHOST_NO_FAST_PATH="1") if full else cli_env()
    return subprocess.run([*PLUGHOST, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def test_the_list_from_the_files_is_the_full_commands(demo: Path) -> None:
    (demo / "plugins" / "typo").mkdir()
    (demo / "plugins" / "typo" / "plugin.toml").write_text('id = "typo"\nversoin = "1.0.0"\n')
    for args in (("plugins", "list", "-w", str(demo)), ("plugins", "list", "--json", "-w", str(demo))):
        fast, full = run(*args), run(*args, full=True)
        assert fast.returncode == 0 and fast.stderr == LISTED
        assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
        assert "typo" in fast.stdout and "calculator" in fast.stdout


def test_warnings_and_errors_are_the_full_commands(demo: Path) -> None:
    """A corrupt state file is said (the fast path leaves it to the full command); a bad plughost.toml fails."""
    (demo / "plugin-state.toml").write_text("[modules\n")
    fast, full = run("plugins", "list", "-w", str(demo)), run("plugins", "list", "-w", str(demo), full=True)
    assert fast.returncode == 0 and "plugin-state.toml is corrupt" in " ".join(fast.stderr.split())
    assert fast.stdout == full.stdout and "calculator" in fast.stdout
    (demo / "plughost.toml").write_text("[host]\nplugin_dir = ['plugins']\n")
    broken = run("plugins", "list", "-w", str(demo))
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.startswith("error: ") and "host.plugin_dir: unknown key" in broken.stderr
