"""`OneBotAdapter`: starts every configured bot (several at once) and owns their tasks and sockets."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from plughost.adapters.onebot.transports import ForwardWsBot, HttpEventServer, ReverseWsServer, bind_socket
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.errors import ConfigError

log = logging.getLogger("plughost.adapters.onebot")


class OneBotAdapter:
    """Connects the configured OneBot v11 bots to a dispatcher. Use as an async context manager."""

    def __init__(self, configs: Sequence[BotConfig], dispatcher: Dispatcher) -> None:
        self.configs = [c for c in configs if c.enabled]
        self.dispatcher = dispatcher
        self.forward: dict[str, ForwardWsBot] = {}
        self.reverse: list[ReverseWsServer] = []
        self.http: list[HttpEventServer] = []
        self.ports: dict[str, int] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        _check_unique(self.configs)

    async def __aenter__(self) -> OneBotAdapter:
        try:
            self._start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _start(self) -> None:
        by_bind: dict[tuple[str, str], list[BotConfig]] = defaultdict(list)
        for config in self.configs:
            if config.transport == "ws-forward":
                bot = self.forward[config.id] = ForwardWsBot(config, self.dispatcher)
                self._spawn(bot.run(), f"onebot:{config.id}:forward")
            else:
                by_bind[(config.transport, config.bind or "")].append(config)
        for (transport, _), configs in by_bind.items():
            try:
                sock = bind_socket(configs[0].bind_address)
            except OSError as exc:
                names = ", ".join(c.id for c in configs)
                raise ConfigError(f"bot(s) {names}: cannot listen on {configs[0].bind}: {exc}") from exc
            if transport == "ws-reverse":
                reverse = ReverseWsServer(configs, self.dispatcher, sock)
                self.reverse.append(reverse)
                port, run = reverse.port, reverse.run()
            else:
                http = HttpEventServer(configs, self.dispatcher, sock)
                self.http.append(http)
                port, run = http.port, http.run()
            for config in configs:
                self.ports[config.id] = port
            self._spawn(run, f"onebot:{configs[0].bind}:{transport}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._report)
        self._tasks.append(task)

    @staticmethod
    def _report(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("OneBot transport %s stopped: %s", task.get_name(), task.exception())

    async def aclose(self) -> None:
        """Stop every transport and close every socket."""
        for server in self.http:
            server.stop()
        if self.http:
            await asyncio.wait([t for t in self._tasks if "http" in t.get_name()], timeout=5)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sock in [*(s.sock for s in self.reverse), *(s.sock for s in self.http)]:
            sock.close()

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
