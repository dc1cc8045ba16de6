"""`ManageServer`: the management API served by the running host (an adapter the host starts and stops).

At start it resolves the key, binds the port, writes `.plughost/manage.json` (address, pid, key
file) so the CLI finds the running host, and serves until the host stops; at stop the file is removed
if it is still this server's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path

import uvicorn

from plughost.adapters.lingering import LingeringH11Protocol
from plughost.adapters.listening import EmbeddedServer, bind_socket
from plughost.core.files import write_atomic
from plughost.errors import ConfigError
from plughost.host import Host
from plughost.manage.app import build_app
from plughost.manage.auth import KeyCheck, ManageKey, resolve_key
from plughost.manage.context import ManageContext
from plughost.manage.feeds import LIFECYCLE_EVENTS, Feed, LogRing, event_item
from plughost.manage.settings import ManageSettings
from plughost.sdk.models import PluginEvent
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.manage")
SERVER_FILE = Path(".plughost") / "manage.json"


class ManageServer:
    """Serves the management API for `host` on `settings.bind` (port 0 picks a free port)."""

    def __init__(self, host: Host, settings: ManageSettings | None = None) -> None:
        self.host = host
        self.settings = settings if settings is not None else ManageSettings.from_host_config(host.config)
        self.key: ManageKey | None = None
        self.context: ManageContext | None = None
        self._server: EmbeddedServer | None = None
        self._sock: socket.socket | None = None
        self._log_handler: LogRing | None = None
        self._logger_level: int | None = None
        self._served: asyncio.Task[None] | None = None
        self._written: dict[str, object] | None = None  # what `.plughost/manage.json` says, once written

    @property
    def url(self) -> str:
        """`http://host:port` of the running server."""
        if self._sock is None:
            raise RuntimeError("the management server is not running")
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def server_file(self) -> Path:
        return self.host.workspace / SERVER_FILE

    async def start(self, tasks: TaskOwner) -> None:
        self.key = resolve_key(self.host.workspace, self.settings)
        try:
            self._sock = self._bind()
        except OSError as exc:
            raise ConfigError(
                f"the management server cannot listen on {self.settings.bind}: {exc.strerror or exc} "
                "(another plughost running? choose another with --manage-bind or [manage] bind, or --no-manage)"
            ) from exc
        loop = asyncio.get_running_loop()
        self.context = ctx = ManageContext(
            host=self.host,
            settings=self.settings,
            keys=KeyCheck(self.key.value, self.settings.failed_auth_limit),
            events=Feed(self.settings.event_records),
            logs=Feed(self.settings.log_records),
        )
        earlier = self.host.manager.get_events()  # what happened while loading, before the server ran
        if self.host.cluster is not None:  # and on the other hosts of the cluster (`plughost.cluster.history`)
            earlier = sorted([*earlier, *self.host.cluster.history.remote_events], key=lambda e: e.timestamp)
            self.host.cluster.history.remote_event_handlers.append(self._on_event)
        for event in earlier:
            if event.event_type in LIFECYCLE_EVENTS:
                ctx.events.publish(event_item(event))
        self.host.manager.add_event_handler(self._on_event, LIFECYCLE_EVENTS)
        self._attach_log_ring(LogRing(ctx.logs, loop))
        config = uvicorn.Config(
            build_app(ctx),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            http=LingeringH11Protocol,  # a 413 before the body is read still reaches the client
            proxy_headers=False,  # a client cannot choose its address: X-Forwarded-For would dodge the key limit
            timeout_graceful_shutdown=3,
        )
        self._server = EmbeddedServer(config)
        self._served = tasks.spawn(self._server.serve(sockets=[self._sock]), name="manage-server")
        self._write_server_file()

    def _bind(self) -> socket.socket:
        """The configured address; when only the default port is taken (another host runs), a free one."""
        address = (self.settings.host, self.settings.port)
        try:
            return bind_socket(address)
        except OSError:
            if "bind" in self.settings.model_fields_set or self.settings.port == 0:
                raise
        sock = bind_socket((self.settings.host, 0))
        log.warning(
            "port %d is in use (another plughost?); the management API listens on port %d instead",
            self.settings.port,
            sock.getsockname()[1],
        )
        return sock

    def _on_event(self, event: PluginEvent) -> None:
        if self.context is not None:
            self.context.events.publish(event_item(event))

    def _attach_log_ring(self, ring: LogRing) -> None:
        logger = logging.getLogger("plughost")
        if logger.getEffectiveLevel() > logging.INFO:
            self._logger_level = logger.level
            logger.setLevel(logging.INFO)
        logger.addHandler(ring)
        self._log_handler = ring

    def _write_server_file(self) -> None:
        assert self.key is not None
        data = {
            "url": self.url,
            "pid": os.getpid(),
            "workspace": str(self.host.workspace),
            "key_file": str(self.key.path) if self.key.path else None,
        }
        path = self.server_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(data, indent=2) + "\n", backup=False)
            self._written = data
        except OSError as exc:
            log.warning("cannot write %s (the CLI will not find this host): %s", path, exc)

    async def aclose(self) -> None:
        if self.context is not None:  # live streams end now instead of holding the shutdown up
            self.context.events.close()
            self.context.logs.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._served is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._served), 10)
            except (TimeoutError, asyncio.CancelledError):
                self._served.cancel()
            except Exception:
                log.exception("the management server failed")
        if self._log_handler is not None:
            logger = logging.getLogger("plughost")
            logger.removeHandler(self._log_handler)
            if self._logger_level is not None:
                logger.setLevel(self._logger_level)
            self._log_handler = None
        if self.context is not None:
            self.host.manager.events.remove_handler(self._on_event)
            if self.host.cluster is not None and self._on_event in self.host.cluster.history.remote_event_handlers:
                self.host.cluster.history.remote_event_handlers.remove(self._on_event)
        self._remove_server_file()
        if self._sock is not None:
            self._sock.close()

    def _remove_server_file(self) -> None:
        """Remove `.plughost/manage.json` if it is still this server's (another host may have taken it over)."""
        if self._written is None:
            return
        try:
            data = json.loads(self.server_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if data == self._written:
            self.server_file.unlink(missing_ok=True)
