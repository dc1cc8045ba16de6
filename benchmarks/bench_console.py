"""The web console's budget, in Debian's Chromium (Playwright): first load of the plugins page with
200 plugins loaded (target ≤ 1 s, transfer size reported), and how soon the table shows a state
change made elsewhere (target ≤ 250 ms). Compared in the same run with the one API call the page
needs (`GET /api/v1/plugins`) and with the event's own trip through the live stream.

The host runs in this process; Chromium is its own processes. Runs skip with a note when
Chromium or Playwright is missing.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Row, print_rows  # benchmarks/common.py (this directory is on sys.path)

PLUGINS = 200
LOADS = 5
CHANGES = 10
PLUGIN_CODE = (
    'from plughost import Plugin\n\nplugin = Plugin()\n\n\n@plugin.method()\ndef ping() -> str:\n    return "pong"\n'
)


def _workspace(root: Path) -> Path:
    for n in range(PLUGINS):
        directory = root / "plugins" / f"p{n:03d}"
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "p{n:03d}"\nversion = "1.0.0"\n', encoding="utf-8")
        (directory / "plugin.py").write_text(PLUGIN_CODE, encoding="utf-8")
    return root


async def _bench(chromium: str) -> dict[str, Any]:
    import httpx
    from playwright.async_api import async_playwright

    from plughost.host import Host
    from plughost.manage.server import ManageServer
    from plughost.manage.settings import ManageSettings

    with tempfile.TemporaryDirectory(prefix="plughost-bench-console-") as tmp:
        host = Host(_workspace(Path(tmp)))
        server = host.add_adapter(ManageServer(host, ManageSettings(bind="127.0.0.1:0")))
        async with host, async_playwright() as driver:
            assert server.key is not None
            key, url = server.key.value, server.url
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as api:
                api_ms = []
                for _ in range(LOADS):
                    started = time.perf_counter()
                    (await api.get("/api/v1/plugins")).raise_for_status()
                    api_ms.append((time.perf_counter() - started) * 1000)
            browser = await driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            loads, transfer = [], 0
            for _ in range(LOADS):  # a fresh context each time: nothing cached
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                await context.add_init_script(f"sessionStorage.setItem('plughost.key', {key!r})")
                page = await context.new_page()
                started = time.perf_counter()
                await page.goto(f"{url}/#/plugins")
                await page.locator("tr[data-plugin]").nth(PLUGINS - 1).wait_for()
                loads.append((time.perf_counter() - started) * 1000)
                transfer = await page.evaluate(
                    "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
                    ".reduce((total, entry) => total + entry.transferSize, 0)"
                )
                await context.close()
            context = await browser.new_context()
            await context.add_init_script(f"sessionStorage.setItem('plughost.key', {key!r})")
            page = await context.new_page()
            await page.goto(f"{url}/#/plugins")
            await page.locator("tr[data-plugin]").nth(PLUGINS - 1).wait_for()
            updates = []
            for n in range(CHANGES):
                plugin_id = f"p{n:03d}"
                state = page.locator(f"tr[data-plugin={plugin_id}] td.state")
                started = time.perf_counter()
                await host.manager.disable_plugin(plugin_id)
                await state.filter(has_text="disabled").wait_for()
                updates.append((time.perf_counter() - started) * 1000)
            await browser.close()
    return {"api_ms": api_ms, "loads": loads, "transfer": transfer, "updates": updates}


def run() -> list[Row]:
    chromium = shutil.which("chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        chromium = None
    if chromium is None:
        print("bench_console: skipped (needs Debian's chromium and the playwright package)", file=sys.stderr)
        return []
    f = asyncio.run(_bench(chromium))
    load = statistics.median(f["loads"])
    api = statistics.median(f["api_ms"])
    update = max(f["updates"])
    return [
        Row(f"console: GET /api/v1/plugins, {PLUGINS} plugins (median of {LOADS})", api, "ms", "baseline", ""),
        Row(
            f"console: first load of the plugins page, {PLUGINS} plugins, table filled (median of {LOADS})",
            load,
            "ms",
            "≤ 1 000 ms",
            f"the page's one API call: {api:.1f} ms; transferred {f['transfer'] / 1024:.0f} KiB (no cache)",
            load <= 1000,
        ),
        Row(
            f"console: table shows a state change made elsewhere (worst of {CHANGES})",
            update,
            "ms",
            "≤ 250 ms",
            f"median {statistics.median(f['updates']):.0f} ms (disable on the host → row says disabled)",
            update <= 250,
        ),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print_rows("Web console", run())
