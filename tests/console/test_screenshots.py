"""Screenshots of the console's main pages, light and dark, desktop and phone.

`python3 tools/dev.py screenshots` writes them to docs/console/ (docs/console.md shows them); in a
normal test run they go to a temporary directory and the test checks they are real pictures of
filled pages.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from playwright.async_api import Page, expect

from tests.manage.support import Running

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_screenshots_of_the_main_pages(console: Page, live: Running, tmp_path: Path) -> None:
    target = Path(os.environ.get("PLUGHOST_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # something to show: calls, a failure, an open breaker
        await live.host.manager.execute("flaky", "explode")
    await live.host.manager.execute("settings", "echo", {"text": "hello"})
    await live.client.post(
        "/api/v1/sandbox/events", json={"chat": "group", "group_id": 123, "user_id": 456, "text": "/pic"}
    )

    async def shoot(name: str, route: str, ready: str) -> Path:
        await console.goto(console.url.split("#")[0] + route)
        await expect(console.locator(ready).first).to_be_visible()
        path = target / f"{name}.png"
        await console.screenshot(path=str(path), full_page=True)
        return path

    shots = [
        await shoot("overview", "#/overview", ".open-breakers"),
        await shoot("plugins", "#/plugins", "tr[data-plugin=settings]"),
        await shoot("plugin-detail", "#/plugins/settings", "form.config-form"),
        await shoot("commands", "#/commands", "table"),
        await shoot("events", "#/events", ".event-line"),
    ]
    await console.goto(console.url.split("#")[0] + "#/chat")
    await console.get_by_label("Chat", exact=True).select_option("group")
    await console.get_by_label("Group id").fill("123")
    await console.get_by_label("User id").fill("456")
    await console.get_by_label("Message").fill("/pic")
    await console.get_by_label("Message").press("Enter")
    await expect(console.locator(".bubble.bot img")).to_be_visible()
    await console.screenshot(path=str(target / "chat.png"), full_page=True)
    shots.append(target / "chat.png")
    await console.get_by_role("button", name="Switch between dark and light").click()
    await console.set_viewport_size({"width": 390, "height": 844})
    shots.append(await shoot("plugins-phone-dark", "#/plugins", "tr[data-plugin=settings]"))
    for path in shots:
        width, height = png_size(path)
        assert width >= 390 and height >= 300, (path, width, height)
        assert path.stat().st_size > 10_000, f"{path} looks empty"
