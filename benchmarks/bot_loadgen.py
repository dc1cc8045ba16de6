#!/usr/bin/env python3
"""Load generator for `bench_bot`: plays a OneBot implementation on a reverse WebSocket.

It sends events (a mix of commands, chat messages and pokes; each answered by exactly one reply),
answers the host's actions like a real implementation, and measures the time from an event frame
to its reply frame. Prints one JSON object.

    python bot_loadgen.py URL TOKEN max  DURATION WINDOW START  # closed loop: WINDOW events outstanding
    python bot_loadgen.py URL TOKEN rate DURATION RATE START    # open loop: RATE events/s, whatever happens

START is the first sequence number (message ids must not repeat across runs: the host deduplicates).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from common import pin_load_generator  # benchmarks/common.py (this directory is on sys.path)
from websockets.asyncio.client import ClientConnection, connect

from plughost.adapters.onebot.transports import CoalescedClientConnection  # one write per loop iteration

SELF_ID = 10001
WARMUP_S = 0.5
TICK_S = 0.002


def event(seq: int) -> str:
    kind = seq % 3
    if kind == 0:
        body = {"post_type": "message", "message_type": "group", "sub_type": "normal", "message_id": seq,
                "group_id": 123, "user_id": 456, "message": [{"type": "text", "data": {"text": f"/echo {seq}"}}],
                "raw_message": "", "font": 0,
                "sender": {"user_id": 456, "nickname": "u", "role": "member"}}  # fmt: skip
    elif kind == 1:
        body = {"post_type": "message", "message_type": "private", "sub_type": "friend", "message_id": seq,
                "user_id": 456, "message": f"hi {seq}", "raw_message": "", "font": 0,
                "sender": {"user_id": 456, "nickname": "u"}}  # fmt: skip
    else:
        body = {"post_type": "notice", "notice_type": "notify", "sub_type": "poke", "group_id": 123,
                "user_id": seq, "target_id": SELF_ID}  # fmt: skip
    return json.dumps({"time": 1700000000, "self_id": SELF_ID, **body})


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Load:
    """One run: events out, action responses back, reply latencies measured."""

    def __init__(self, ws: ClientConnection, start: int, window: int | None) -> None:
        self.ws = ws
        self.seq = start
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.replies = 0
        self.measuring = False
        self.window = asyncio.Semaphore(window) if window else None

    def start_measuring(self) -> float:
        self.measuring, self.replies, self.latencies = True, 0, []
        return time.perf_counter()

    async def send_next(self) -> None:
        self.seq += 1
        self.sent_at[self.seq] = time.perf_counter()
        await self.ws.send(event(self.seq))

    async def read(self) -> None:
        """Answer every action like an implementation; a send action is the reply to an event."""
        while True:
            data = json.loads(await self.ws.recv(decode=False))
            echo = json.dumps(data.get("echo"))
            await self.ws.send('{"status": "ok", "retcode": 0, "data": {"message_id": 1}, "echo": ' + echo + "}")
            if not data.get("action", "").startswith("send_"):
                continue
            text = data["params"]["message"][0]["data"].get("text", "")
            started = self.sent_at.pop(int(text.rsplit(" ", 1)[-1]), None)
            if started is None:
                continue
            if self.measuring:
                self.replies += 1
                self.latencies.append(time.perf_counter() - started)
            if self.window is not None:
                self.window.release()

    async def closed_loop(self, duration: float) -> float:
        """Keep `window` events outstanding; returns when measuring began."""
        assert self.window is not None
        begin = time.perf_counter()
        mark = begin + WARMUP_S
        while time.perf_counter() - begin < WARMUP_S + duration:
            if not self.measuring and time.perf_counter() >= mark:
                mark = self.start_measuring()
            await self.window.acquire()
            await self.send_next()
        return mark

    async def open_loop(self, duration: float, rate: float) -> float:
        """Send `rate` events per second whatever happens; returns when measuring began."""
        begin = next_at = time.perf_counter()
        mark = begin + WARMUP_S
        first = self.seq
        while time.perf_counter() - begin < WARMUP_S + duration:
            now = time.perf_counter()
            if not self.measuring and now >= mark:
                mark = self.start_measuring()
            for _ in range(max(0, int((now - begin) * rate) - (self.seq - first))):
                await self.send_next()
            next_at += TICK_S
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        return mark


async def main(url: str, token: str, mode: str, duration: float, param: float, start: int) -> dict[str, float]:
    pin_load_generator()
    headers = {"X-Self-ID": str(SELF_ID), "X-Client-Role": "Universal", "Authorization": f"Bearer {token}"}
    async with connect(
        url, additional_headers=headers, proxy=None, compression=None, max_queue=None,
        create_connection=CoalescedClientConnection,
    ) as ws:  # fmt: skip
        load = Load(ws, start, int(param) if mode == "max" else None)
        reader = asyncio.create_task(load.read())
        mark = await (load.closed_loop(duration) if mode == "max" else load.open_loop(duration, param))
        elapsed = time.perf_counter() - mark
        counted = load.replies
        await asyncio.sleep(0.5)  # late replies still count towards latency, not throughput
        reader.cancel()
    return {
        "replies_per_s": counted / elapsed,
        "p50_ms": percentile(load.latencies, 0.50) * 1000,
        "p99_ms": percentile(load.latencies, 0.99) * 1000,
        "max_ms": max(load.latencies, default=float("nan")) * 1000,
        "sent": float(load.seq - start),
        "unanswered": float(len(load.sent_at)),
    }


if __name__ == "__main__":
    url, token, mode, duration, param, start = sys.argv[1:7]
    print(json.dumps(asyncio.run(main(url, token, mode, float(duration), float(param), int(start)))))
