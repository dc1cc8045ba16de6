"""The web console in a real Chromium (Debian's, driven by Playwright) against a real host.

Every test gets its own host on a free port (`live`), its own browser and a signed-in page
(`console`); the host and Playwright share the test's event loop. The
workspace has a plugin with a config schema, a failing plugin, a chat plugin, and the C example
native plugin (its resource pages), so every page has something to show.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ROOT, require_tool
from tests.manage.conftest import PLAIN_PLUGIN, SETTINGS_PLUGIN, SETTINGS_SCHEMA
from tests.manage.support import Running, serve

TIMEOUT_MS = 15_000
PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
"""A 1×1 GIF: the image the chat plugin's `/pic` answers."""
CHAT_PLUGIN = """
from plughost.sdk import CommandContext, Message, NoticeEvent, Plugin, Reply, Segment

plugin = Plugin()
PIXEL = "{pixel}"

@plugin.command("pic", description="an image for you")
async def pic(ctx: CommandContext) -> Message:
    return Message([Segment.at(ctx.sender.user_id), Segment.text(" here you go"), Segment.image(PIXEL)])

@plugin.route("notice", "GroupPoke", "PrivatePoke")
async def poked(ev: NoticeEvent) -> Reply:
    return Reply.of(f"ouch, {ev.user_id}")
"""
FLAKY_PLUGIN = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def explode() -> None:
    raise RuntimeError("flaky exploded")

@plugin.method()
def fine() -> str:
    return "fine"
"""


@pytest.fixture(scope="session")
def example_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C example native plugin (management routes and resources), built with its Makefile."""
    require_tool("gcc", "the console shows a native plugin's resource pages")
    make = require_tool("make", "the C example is built with its Makefile")
    out = tmp_path_factory.mktemp("console-native") / "example-c.so"
    subprocess.run(
        [make, "-s", "-C", str(ROOT / "examples" / "native" / "c"), f"OUT={out}", f"SDK={ROOT / 'sdk' / 'c'}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture
def console_workspace(tmp_path: Path, example_library: Path) -> Path:
    plugins = tmp_path / "plugins"
    for plugin_id, code, extra in (
        ("settings", SETTINGS_PLUGIN, SETTINGS_SCHEMA),
        ("plain", PLAIN_PLUGIN, ""),
        ("chat", CHAT_PLUGIN.replace("{pixel}", PIXEL), ""),
        ("flaky", FLAKY_PLUGIN, ""),
    ):
        directory = plugins / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{extra}', encoding="utf-8")
        (directory / "plugin.py").write_text(code, encoding="utf-8")
    (plugins / "example-c.so").write_bytes(example_library.read_bytes())
    (plugins / "example-c.plugin.toml").write_text('id = "example-c"\nruntime = "native"\n', encoding="utf-8")
    (tmp_path / "plughost.toml").write_text("[commands]\nowners = [1]\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
async def live(console_workspace: Path) -> AsyncIterator[Running]:
    async with serve(console_workspace) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = require_tool("chromium", "the web console is tested in a real browser")
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == [], f"the console raised in the browser: {errors}"


async def sign_in(page: Page, live: Running, key: str | None = None) -> None:
    await page.goto(live.server.url + "/")
    await page.get_by_label("Management key").fill(key if key is not None else live.key)
    await page.get_by_role("button", name="Sign in").click()


@pytest.fixture
async def console(page: Page, live: Running) -> Page:
    """A page signed in to the live host, on the overview."""
    await sign_in(page, live)
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page
