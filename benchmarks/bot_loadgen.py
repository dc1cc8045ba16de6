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
import os
import sys
import time

from websockets.asyncio.client import connect

from plughost.adapters.onebot.transports import CoalescedClientConnection  # one write per loop iteration

SELF_ID = 10001


def event(seq: int) -> str:
    kind = seq % 3
    if kind == 0:
        body = {"post_type": "message", "message_type": "group", "sub_type": "normal", "message_id": seq,
                "group_id": 123, "user_id": 456, "message": [{"type": "text", "data": {"text": f"/echo {seq}"}}],
                "raw_message": "", "font": 0, "sender": {"user_id": 456, "nickname": "u", "role": "member"}}  # fmt: skip
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


async def main(url: str, token: str, mode: str, duration: float, param: float, start: int) -> dict[str, float]:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    headers = {"X-Self-ID": str(SELF_ID), "X-Client-Role": "Universal", "Authorization": f"Bearer {token}"}
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    replies = 0
    window = asyncio.Semaphore(int(param)) if mode == "max" else None
    measuring = False
    async with connect(
        url, additional_headers=headers, proxy=None, compression=None, max_queue=None,
        create_connection=CoalescedClientConnection,
    ) as ws:  # fmt: skip

        async def read() -> None:
            nonlocal replies
            while True:
                data = json.loads(await ws.recv(decode=False))
                echo = json.dumps(data.get("echo"))
                await ws.send('{"status": "ok", "retcode": 0, "data": {"message_id": 1}, "echo": ' + echo + "}")
                if not data.get("action", "").startswith("send_"):
                    continue
                text = data["params"]["message"][0]["data"].get("text", "")
                seq = int(text.rsplit(" ", 1)[-1])
                started = sent_at.pop(seq, None)
                if started is None:
                    continue
                if measuring:
                    replies += 1
                    latencies.append(time.perf_counter() - started)
                if window is not None:
                    window.release()

        reader = asyncio.create_task(read())
        seq = start
        warmup = 0.5
        begin = time.perf_counter()
        if mode == "max":
            assert window is not None
            while time.perf_counter() - begin < warmup + duration:
                if not measuring and time.perf_counter() - begin >= warmup:
                    measuring, replies, latencies = True, 0, []
                    mark = time.perf_counter()
                await window.acquire()
                seq += 1
                sent_at[seq] = time.perf_counter()
                await ws.send(event(seq))
        else:
            rate = param
            tick = 0.002
            next_at = begin
            mark = begin + warmup
            sent = 0
            while time.perf_counter() - begin < warmup + duration:
                now = time.perf_counter()
                if not measuring and now >= mark:
                    measuring, replies, latencies = True, 0, []
                    sent = 0
                due = int((now - begin) * rate) - (seq - start)
                for _ in range(max(0, due)):
                    seq += 1
                    sent += 1
                    sent_at[seq] = time.perf_counter()
                    await ws.send(event(seq))
                next_at += tick
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        elapsed = time.perf_counter() - mark
        counted = replies
        await asyncio.sleep(0.5)  # late replies still count towards latency, not throughput
        reader.cancel()
    return {
        "replies_per_s": counted / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "sent": float(seq - start),
        "unanswered": float(len(sent_at)),
    }


if __name__ == "__main__":
    url, token, mode, duration, param, start = sys.argv[1:7]
    print(json.dumps(asyncio.run(main(url, token, mode, float(duration), float(param), int(start)))))
