"""The CLI's client for a running host's management API, and how the CLI finds that host.

Only the standard library's `http.client` and json: no FastAPI, no host, no runtimes, so a
command sent to a running host pays for the CLI's start-up and one HTTP round trip, however many
plugins the host runs. (httpx would cost five times as long to import as the request takes.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from urllib.parse import quote, urlsplit

from plughost.cli.output import fail, note

if TYPE_CHECKING:
    from http.client import HTTPConnection, HTTPResponse

# the same paths and variable as plughost.manage.server / plughost.manage.auth (importing those would load FastAPI)
SERVER_FILE = Path(".plughost") / "manage.json"
KEY_FILE = Path(".plughost") / "manage.key"
KEY_ENV = "PLUGHOST_MANAGE_KEY"
HOST_CONFIG_FILE = "plughost.toml"
CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 120.0
# plughost's own errors: shown exactly as when the CLI loads the workspace itself
DOMAIN_ERRORS = frozenset(
    {"plugin_not_found", "conflict", "load_failed", "invalid_config", "rejected", "state_file_unavailable"}
)


class HostUnreachable(Exception):
    """Nothing answered at the host's address: the request was not sent, so nothing happened."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class ServerRecord(NamedTuple):
    """`.plughost/manage.json`, written by `plughost run` while it serves the management API."""

    url: str
    pid: int
    key_file: Path | None


def read_server_file(workspace: Path) -> tuple[ServerRecord | None, str | None]:
    """The live host recorded for `workspace`, or None with why the file was ignored (None: no file)."""
    path = workspace / SERVER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = ServerRecord(
            url=str(data["url"]),
            pid=int(data["pid"]),
            key_file=Path(data["key_file"]) if data.get("key_file") else None,
        )
        recorded_workspace = Path(data["workspace"]).resolve()
        if not is_http_url(record.url):
            raise ValueError(f"url {record.url!r} is not http(s)")
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return None, f"ignored {SERVER_FILE}: unreadable ({type(exc).__name__}: {exc})"
    if recorded_workspace != workspace.resolve():
        return None, f"ignored {SERVER_FILE}: it was written for {recorded_workspace}"
    if not pid_alive(record.pid):
        return None, f"ignored a stale {SERVER_FILE} (its host, pid {record.pid}, is not running)"
    return record, None


def no_host_reason(ignored: str | None) -> str:
    """Why no host is asked, for the note that says what the command did instead (`ignored`: `read_server_file`'s)."""
    return f"{ignored}; no running host" if ignored else "no running host"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        return False


def pid_alive(pid: int) -> bool:
    """Does process `pid` exist (a zombie does not count)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc (macOS): the signal test is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def resolve_key(workspace: Path, explicit: str | None, record: ServerRecord | None) -> str | None:
    """The key to send: --key, else what the recorded host used, else `[manage] key`, `PLUGHOST_MANAGE_KEY`,
    `.plughost/manage.key` (the host's own order). A key file that cannot be read ends the command."""
    try:
        return key_for(workspace, explicit, record)
    except UnreadableKey as exc:
        fail(f"cannot read the management key {exc.path}: {exc.reason} (pass it with --key)")


class UnreadableKey(Exception):
    """A key file exists but cannot be read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def key_for(workspace: Path, explicit: str | None, record: ServerRecord | None) -> str | None:
    """`resolve_key`'s answer; raises `UnreadableKey` instead of ending the command."""
    if explicit:
        return explicit.strip()
    if record is not None and record.key_file is not None:
        return _read_key_file(record.key_file)
    return _config_key(workspace) or os.environ.get(KEY_ENV, "").strip() or _read_key_file(workspace / KEY_FILE)


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableKey(path, str(exc.strerror or exc)) from exc


def _config_key(workspace: Path) -> str | None:
    """`[manage] key` of the workspace's plughost.toml (None when absent or unreadable: the host says why)."""
    import tomllib

    try:
        with (workspace / HOST_CONFIG_FILE).open("rb") as file:
            key = tomllib.load(file).get("manage", {}).get("key")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return None
    return key.strip() if isinstance(key, str) and key.strip() else None


class RemoteHost:
    """One running host's management API, called synchronously; use it as a context manager.

    An answer that is an error ends the command with one line (`fail`): plughost's own errors
    (unknown plugin, a failed reload…) read exactly as when the CLI loads the workspace itself;
    the API's (wrong key, invalid request…) name the host, the status and the code. Nothing
    answering raises `HostUnreachable` (the caller may load the workspace instead).
    """

    def __init__(self, url: str, key: str | None, *, record: ServerRecord | None = None) -> None:
        if not is_http_url(url):
            fail(f"--remote: {url!r} is not an http:// or https:// address (e.g. http://127.0.0.1:3210)", 2)
        self.url = url.rstrip("/")
        self.key = key
        self.record = record
        self._announced = False
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._connection: HTTPConnection | None = None

    def __enter__(self) -> RemoteHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._connection.close()

    def plugins(self) -> list[dict[str, Any]]:
        """`GET /api/v1/plugins`: rows like `manager.catalog()` plus guard figures."""
        rows: list[dict[str, Any]] = self._request("GET", "/api/v1/plugins")["plugins"]
        return rows

    def plugin(self, plugin_id: str) -> dict[str, Any]:
        """`GET /api/v1/plugins/{id}`: summary, manifest, descriptor, config, config_schema, guard."""
        detail: dict[str, Any] = self._request("GET", f"/api/v1/plugins/{quote(plugin_id, safe='')}")
        return detail

    def action(self, plugin_id: str, action: str) -> dict[str, Any]:
        """`POST /api/v1/plugins/{id}/{enable|disable|reload|unload}` → {id, action, changed, state, version}."""
        result: dict[str, Any] = self._request("POST", f"/api/v1/plugins/{quote(plugin_id, safe='')}/{action}")
        return result

    def execute(self, plugin_id: str, method: str | None, args: Any, timeout_s: float | None) -> dict[str, Any]:
        """`POST /api/v1/plugins/{id}/execute` → PluginExecutionResult as JSON."""
        body = {"method": method, "args": args, "timeout_s": timeout_s}
        wait = ANSWER_TIMEOUT_S if timeout_s is None else max(ANSWER_TIMEOUT_S, timeout_s + 30)
        path = f"/api/v1/plugins/{quote(plugin_id, safe='')}/execute"
        result: dict[str, Any] = self._request("POST", path, body, wait_s=wait)
        return result

    def console(self, command: str) -> dict[str, Any]:
        """`POST /api/v1/console` → {ok, kind, text, error, usage}; an invalid command line exits 2."""
        result: dict[str, Any] = self._request("POST", "/api/v1/console", {"command": command}, invalid_exit=2)
        return result

    def status(self) -> dict[str, Any]:
        """`GET /api/v1/status`: version, pid, uptime, memory, plugin counts…"""
        result: dict[str, Any] = self._request("GET", "/api/v1/status")
        return result

    def serves(self, path: str) -> bool:
        """Whether the host has a route at `path` (any answer but 404 to a bodiless GET)."""
        status, _, _ = self._send("GET", path, None, ANSWER_TIMEOUT_S)
        return status != 404

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        wait_s: float | None = None,
        own: frozenset[str] = frozenset(),
    ) -> Any:
        """Any route of the API → its JSON answer; errors whose code is in `own` read as plughost's own
        (the message alone, as when the command runs without a host)."""
        return self._request(method, path, body, wait_s=wait_s, own=own)

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        wait_s: float | None = None,
        invalid_exit: int = 1,
        own: frozenset[str] = frozenset(),
    ) -> Any:
        status, reason, raw = self._send(method, path, body, wait_s or ANSWER_TIMEOUT_S)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if 200 <= status < 300 and data is not None:
            self._announce()
            return data
        self._fail(status, reason, data, invalid_exit, own)

    def _send(self, method: str, path: str, body: Any, wait_s: float) -> tuple[int, str, bytes]:
        import http.client
        import socket

        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = self._connection = self._connection or _connect(self.url)
        try:
            if connection.sock is None:
                connection.connect()  # with CONNECT_TIMEOUT_S
            connection.sock.settimeout(wait_s)  # then as long as the answer may take
            connection.request(method, path, body=payload, headers=headers)
            response: HTTPResponse = connection.getresponse()
            return response.status, response.reason, response.read()
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise HostUnreachable(self.url, _reason(exc)) from None
        except TimeoutError as exc:
            if connection.sock is None:
                raise HostUnreachable(self.url, "no answer to the connection") from exc
            fail(f"the host at {self.url} did not answer within {wait_s:g} s")
        except (http.client.HTTPException, OSError) as exc:
            fail(
                f"the host at {self.url} closed the connection without answering ({_reason(exc)}); "
                "it may be stopping: the request may or may not have taken effect"
            )

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            note(via(self.url, running=self.record is not None))

    def _fail(self, status: int, reason: str, data: Any, invalid_exit: int, own: frozenset[str]) -> NoReturn:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            fail(f"{self.url} answered {status} {reason}, not as a plughost host does")
        self._announce()
        code, message = str(error.get("code")), str(error.get("message"))
        if code in DOMAIN_ERRORS or code in own:
            fail(message)
        if code == "unauthorized":
            message += f"; pass the key with --key or {KEY_ENV}"
        exit_code = invalid_exit if code == "invalid_request" else 1
        fail(f"the host at {self.url} answered {status} {code}: {message}", exit_code)


def via(url: str, *, running: bool) -> str:
    """The note said when a host answered: the one `.plughost/manage.json` names (`running`) or --remote's."""
    return f"via the running host at {url}" if running else f"via the host at {url}"


def _connect(url: str) -> HTTPConnection:
    """A connection to `url`'s host (made lazily; TLS for https://, with the system's certificates)."""
    import http.client

    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT_S)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT_S)


def _reason(exc: BaseException) -> str:
    """The innermost OS reason of an error ("[Errno 111] Connection refused" → "connection refused")."""
    cause: BaseException = exc
    for _ in range(10):
        inner = cause.__cause__ or cause.__context__
        if inner is None:
            break
        cause = inner
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    return str(exc) or type(exc).__name__
