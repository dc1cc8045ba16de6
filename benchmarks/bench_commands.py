"""Commands: full console-path dispatch, registry size independence, tokenizer throughput."""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path

from common import Row

from plughost.bot.commands import CommandSender, tokenize_text
from plughost.host import Host
from plughost.sdk.message import Message, Segment

ADD = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.command("add", description="add three numbers")
async def add(a: int, b: int, c: float) -> str:
    return str(a + b + c)
"""

DISPATCHES = 20_000


def _many(count: int) -> str:
    lines = [ADD]
    for i in range(count - 1):
        lines.append(f'@plugin.command("cmd{i}")\nasync def cmd{i}(a: int, b: int, c: float) -> str:\n    return "x"\n')
    return "\n".join(lines)


def _workspace(root: Path, commands: int) -> Path:
    directory = root / f"ws{commands}" / "plugins" / "bench"
    directory.mkdir(parents=True)
    (directory / "plugin.toml").write_text('id = "bench"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(_many(commands))
    return directory.parent.parent


async def _dispatch_rate(workspace: Path, count: int) -> float:
    """Commands per second through tokenize → resolve → parse 3 args → guarded call → reply."""
    async with Host(workspace) as host:
        console = CommandSender.console()
        execute = host.commands.execute_command
        result = await execute(console, "/add 1 2 3.5")
        assert result.text == "6.5", result.text
        best = 0.0
        for _ in range(3):
            gc.collect()
            start = time.perf_counter()
            for i in range(count):
                await execute(console, f"/add {i} 2 0.5")
            best = max(best, count / (time.perf_counter() - start))
        return best


MIXED = 'word \\"esc\\ aped\\" "quoted arg here" 12345 --x '
ADVERSARIAL = '"a \\'  # unbalanced quotes opening at every argument, escapes everywhere


async def _chat_rate(workspace: Path, count: int) -> float:
    """A group member's `@bot add …` message: trigger, role/scope/permission checks included."""
    async with Host(workspace) as host:
        member = CommandSender.member(100, 200, bot_id=1)
        execute = host.commands.execute_command
        messages = [Message([Segment.at(1), Segment.text(f" add {i} 2 0.5")]) for i in range(count)]
        result = await execute(member, messages[0])
        assert result.text == "2.5", result.text
        gc.collect()
        start = time.perf_counter()
        for message in messages:
            await execute(member, message)
        return count / (time.perf_counter() - start)


def _tokenizer_mb_s(size: int, unit: str = MIXED) -> tuple[float, float]:
    text = (unit * (size // len(unit) + 1))[:size]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        tokenize_text(text)
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6, best


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small, large = _workspace(root, 10), _workspace(root, 1000)
        rate_small = asyncio.run(_dispatch_rate(small, DISPATCHES))
        rate_large = asyncio.run(_dispatch_rate(large, DISPATCHES))
        rate_chat = asyncio.run(_chat_rate(small, DISPATCHES))
    rows.append(
        Row(
            "console-path dispatch (3 typed args)",
            rate_small,
            "cmd/s",
            "≥ 20,000 cmd/s",
            f"{1e6 / rate_small:.1f} µs per command",
            rate_small >= 20_000,
        )
    )
    rows.append(
        Row(
            "chat-path dispatch (@bot trigger, member)", rate_chat, "cmd/s", "", f"{1e6 / rate_chat:.1f} µs per message"
        )
    )
    ratio = rate_small / rate_large
    rows.append(
        Row(
            "dispatch time, 1,000 vs 10 commands",
            ratio,
            "×",
            "≤ 1.2×",
            f"{1e6 / rate_small:.1f} µs vs {1e6 / rate_large:.1f} µs",
            ratio <= 1.2,
        )
    )
    mb_small, t_small = _tokenizer_mb_s(256 * 1024)
    mb_large, t_large = _tokenizer_mb_s(1024 * 1024)
    rows.append(Row("tokenizer, 1 MB argument text", mb_large, "MB/s", "linear", f"256 KB: {mb_small:.1f} MB/s"))
    mb_bad, _ = _tokenizer_mb_s(1024 * 1024, ADVERSARIAL)
    rows.append(Row("tokenizer, 1 MB of unbalanced quotes", mb_bad, "MB/s", "linear", "no backtracking"))
    growth = t_large / t_small
    rows.append(
        Row(
            "tokenizer time 1 MB / 256 KB",
            growth,
            "×",
            "≈ 4× (linear)",
            f"{t_small * 1000:.1f} ms vs {t_large * 1000:.1f} ms",
            growth < 6,
        )
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.name:40} {row.formatted():>16}  {row.target:16} {row.comparison}  {row.ok}")
