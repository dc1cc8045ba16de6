"""`OneBotAdapter`: starts every configured bot (several at once); their tasks, sockets and lanes end with it."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from plughost.adapters.listening import bind_socket
from plughost.adapters.onebot.transports import ForwardWsBot, HttpEventServer, ReverseWsServer
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.errors import ConfigError
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.adapters.onebot")


class OneBotAdapter:
    """Connects the configured OneBot v11 bots to a dispatcher.

    Construction does no I/O. `start(tasks)` binds the sockets and runs each transport as a task
    of `tasks` (a `Host` passes a child of its owner; the adapter's own owner when None); `aclose`
    stops them, closes the sockets and detaches the bots from the dispatcher. On its own the
    adapter is an async context manager doing both.
    """

    def __init__(self, configs: Sequence[BotConfig], dispatcher: Dispatcher) -> None:
        self.configs = [c for c in configs if c.enabled]
        self.dispatcher = dispatcher
        self.forward: dict[str, ForwardWsBot] = {}
        self.reverse: list[ReverseWsServer] = []
        self.http: list[HttpEventServer] = []
        self.ports: dict[str, int] = {}
        self._tasks = TaskOwner("onebot")
        self._http_tasks: list[asyncio.Task[Any]] = []
        _check_unique(self.configs)

    async def __aenter__(self) -> OneBotAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self, tasks: TaskOwner | None = None) -> None:
        """Bind every bot's socket and start its transport; on failure whatever started is stopped."""
        if tasks is not None:
            self._tasks = tasks
        try:
            self._start()
        except BaseException:
            await self.aclose()
            raise

    def _start(self) -> None:
        by_bind: dict[tuple[str, str], list[BotConfig]] = defaultdict(list)
        for config in self.configs:
            if config.transport == "ws-forward":
                bot = self.forward[config.id] = ForwardWsBot(config, self.dispatcher)
                self._tasks.spawn(bot.run(), name=f"onebot:{config.id}:forward")
            else:
                by_bind[(config.transport, config.bind or "")].append(config)
        for (transport, _), configs in by_bind.items():
            try:
                sock = bind_socket(configs[0].bind_address)
            except OSError as exc:
                names = ", ".join(c.id for c in configs)
                raise ConfigError(f"bot(s) {names}: cannot listen on {configs[0].bind}: {exc}") from exc
            name = f"onebot:{configs[0].bind}:{transport}"
            if transport == "ws-reverse":
                reverse = ReverseWsServer(configs, self.dispatcher, sock)
                self.reverse.append(reverse)
                port = reverse.port
                self._tasks.spawn(reverse.run(), name=name)
            else:
                http = HttpEventServer(configs, self.dispatcher, sock)
                self.http.append(http)
                port = http.port
                self._http_tasks.append(self._tasks.spawn(http.run(), name=name))
            for config in configs:
                self.ports[config.id] = port

    async def aclose(self) -> None:
        """Stop every transport, close every socket and detach every bot from the dispatcher."""
        for server in self.http:
            server.stop()
        if self._http_tasks:  # uvicorn finishes the requests in flight
            await asyncio.wait(self._http_tasks, timeout=5)
        await self._tasks.aclose()
        for sock in [*(s.sock for s in self.reverse), *(s.sock for s in self.http)]:
            sock.close()
        for reverse in self.reverse:
            await reverse.aclose()
        for key in [*self.forward, *(k for http in self.http for k in http.lanes)]:
            await self.dispatcher.detach(key)

    def status(self) -> list[dict[str, Any]]:
        """Connection state of every bot."""
        rows: list[dict[str, Any]] = []
        for config in self.configs:
            row: dict[str, Any] = {"bot": config.id, "transport": config.transport}
            if config.id in self.forward:
                bot = self.forward[config.id]
                row.update(connected=bot.connected.is_set(), connections=bot.connections, last_error=bot.last_error)
            for server in self.reverse:
                if config.path in server.by_path and server.by_path[config.path] is config:
                    row.update(port=server.port, roles=sorted(server.connected(config.id)))
            if config.id in self.ports:
                row["port"] = self.ports[config.id]
            rows.append(row)
        return rows


def _check_unique(configs: Sequence[BotConfig]) -> None:
    ids: set[str] = set()
    endpoints: dict[tuple[str, str], str] = {}
    transports: dict[str, str] = {}
    for config in configs:
        if config.id in ids:
            raise ConfigError(f"plughost.toml: two [[bots]] entries have id '{config.id}'; ids must be unique")
        ids.add(config.id)
        if config.bind is None:
            continue
        other = transports.setdefault(config.bind, config.transport)
        if other != config.transport:
            raise ConfigError(f"plughost.toml: bot '{config.id}' uses bind {config.bind} already used by a {other} bot")
        key = (config.bind, config.path or "")
        if key in endpoints:
            raise ConfigError(
                f"plughost.toml: bots '{endpoints[key]}' and '{config.id}' both listen on {config.bind}{config.path}; "
                "give them different paths"
            )
        endpoints[key] = config.id
