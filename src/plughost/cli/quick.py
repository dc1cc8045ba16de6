"""The fast path of `plughost plugins list`: answered before typer, rich or pydantic are imported.

`answer(argv)` runs first in `plughost.cli.app.main`. When argv is a `plugins list` command line it
understands completely — the global -w and -l (warning or error), --remote, --key, --json, --load —
it asks the running host (`.plughost/manage.json`, or --remote) with one HTTP/1.1 request over a
socket, or, without a host and without --load, reads the plugins' files (`plughost.cli.inventory`),
and prints exactly what the full command prints (the same `output` functions). Anything else —
another command, --local, --plugin-dir, --help, a value it does not accept, a host that does not
answer 200, an https address, a warning to show — returns False before anything was printed, and
the full command line runs (and says what was wrong). `PLUGHOST_NO_FAST_PATH=1` switches it off.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from plughost.cli.remote import (
    ANSWER_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    UnreadableKey,
    is_http_url,
    key_for,
    no_host_reason,
    read_server_file,
    via,
)

WORKSPACE_ENV = "PLUGHOST_WORKSPACE"
OFF_ENV = "PLUGHOST_NO_FAST_PATH"
_COMMAND = ["plugins", "list"]
_GLOBAL_VALUES = {"-w": "workspace", "--workspace": "workspace", "-l": "log_level", "--log-level": "log_level"}
_LIST_VALUES = {"--remote": "remote", "--key": "key"}
_LIST_FLAGS = {"--json": "as_json", "--load": "load"}
_QUIET_LEVELS = ("warning", "error")  # at debug or info the full command shows log lines this path does not


class _NotHere(Exception):
    """The fast path cannot give the full command's answer: let the full command run."""


class ListRequest(NamedTuple):
    """A `plugins list` command line the fast path understands."""

    workspace: Path
    remote: str | None = None
    key: str | None = None
    as_json: bool = False
    load: bool = False


def answer(argv: list[str]) -> bool:
    """Print what `plughost *argv` prints and return True, or return False having printed nothing."""
    if os.environ.get(OFF_ENV):
        return False
    request = parse(argv)
    if request is None:
        return False
    try:
        rows, conflicts, said = _rows(request)
    except (_NotHere, OSError, ValueError, KeyError, TypeError, UnreadableKey):
        return False
    from plughost.cli.output import note, print_catalog, print_json

    note(said)
    if request.as_json:
        print_json(rows)
    else:
        print_catalog(rows, conflicts)
    return True


def parse(argv: list[str]) -> ListRequest | None:
    """The request of a `plugins list` command line, or None for any other (or any this path is not sure of)."""
    words: list[str] = []
    values: dict[str, str] = {}
    flags: set[str] = set()
    tokens = iter(argv)
    for token in tokens:
        name, joined, value = token.partition("=") if token.startswith("--") else (token[:2], "", token[2:])
        if not token.startswith("-"):
            if len(words) == len(_COMMAND):
                return None
            words.append(token)
        elif name in _GLOBAL_VALUES or (name in _LIST_VALUES and words == _COMMAND):
            if not (joined or value):
                value = next(tokens, "")  # as click does: the next word, even one that starts with "-"
            if not value:
                return None
            values[{**_GLOBAL_VALUES, **_LIST_VALUES}[name]] = value
        elif token in _LIST_FLAGS and words == _COMMAND:
            flags.add(_LIST_FLAGS[token])
        else:
            return None
    if words != _COMMAND or values.get("log_level", "warning").lower() not in _QUIET_LEVELS:
        return None
    workspace = Path(os.path.realpath(values.get("workspace") or os.environ.get(WORKSPACE_ENV) or os.getcwd()))
    if not workspace.is_dir():
        return None
    return ListRequest(workspace, values.get("remote"), values.get("key"), "as_json" in flags, "load" in flags)


def _rows(request: ListRequest) -> tuple[list[dict[str, Any]], list[str], str]:
    """The rows, the id conflicts and the note that says where they came from."""
    if request.remote is not None:
        if not is_http_url(request.remote):
            raise _NotHere
        url, key = request.remote.rstrip("/"), key_for(request.workspace, request.key, None)
        return _plugins_of(url, key), [], via(url, running=False)
    record, ignored = read_server_file(request.workspace)
    if record is not None:
        url = record.url.rstrip("/")
        return _plugins_of(url, key_for(request.workspace, request.key, record)), [], via(url, running=True)
    if request.load:
        raise _NotHere
    from plughost.cli.inventory import installed_plugins_quietly, listed_note

    listing = installed_plugins_quietly(request.workspace)
    if listing is None:
        raise _NotHere
    return (*listing, listed_note(no_host_reason(ignored)))


def _plugins_of(url: str, key: str | None) -> list[dict[str, Any]]:
    """`GET /api/v1/plugins` → its rows; `_NotHere` for anything but a 200 with rows (the full command says why)."""
    status, body = http_get(url, "/api/v1/plugins", key)
    if status != 200:
        raise _NotHere
    rows = json.loads(body)["plugins"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise _NotHere
    return rows


def http_get(url: str, path: str, key: str | None) -> tuple[int, bytes]:
    """One `GET path` to the http:// host of `url` (HTTP/1.1, connection closed after it) → status, body."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise _NotHere
    head = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}", "Accept: application/json"]
    head += ["Connection: close", *([f"Authorization: Bearer {key}"] if key else []), "", ""]
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=CONNECT_TIMEOUT_S) as connection:
        connection.settimeout(ANSWER_TIMEOUT_S)
        connection.sendall("\r\n".join(head).encode("latin-1"))
        received = []
        while chunk := connection.recv(65536):
            received.append(chunk)
    return parse_response(b"".join(received))


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """Status and body of a whole HTTP/1.1 response (Content-Length, chunked, or up to the close)."""
    head, blank, body = raw.partition(b"\r\n\r\n")
    if not blank:
        raise ValueError("the answer ended inside its head")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1 answer: {status_line!r}")
    status = int(rest.partition(" ")[0])
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, _unchunk(body)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            raise ValueError(f"the answer ended after {len(body)} of {length} bytes")
        return status, body[:length]
    return status, body


def _unchunk(body: bytes) -> bytes:
    parts: list[bytes] = []
    position = 0
    while True:
        end = body.index(b"\r\n", position)  # ValueError when the answer was cut
        size = int(body[position:end].partition(b";")[0], 16)
        position = end + 2
        if size == 0:
            return b"".join(parts)
        if len(body) < position + size:
            raise ValueError("the answer ended inside a chunk")
        parts.append(body[position : position + size])
        position += size + 2
