"""Signing in, navigation, theme, and the overview page, in Chromium."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.console.conftest import sign_in
from tests.manage.support import Running


async def test_wrong_key_shows_a_clear_message_and_nothing_else(page: Page, live: Running) -> None:
    await sign_in(page, live, key="not-the-key-at-all")
    await expect(page.get_by_role("alert")).to_contain_text("That key is wrong")
    await expect(page.locator("header.top")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('plughost.key')") is None
    assert "not-the-key" not in page.url


async def test_sign_in_keeps_the_key_out_of_the_url_and_signs_out(console: Page, live: Running) -> None:
    assert live.key not in console.url
    assert await console.evaluate("sessionStorage.getItem('plughost.key')") == live.key
    await expect(console.locator("[data-stat=plugins] .stat")).to_have_text("5")
    await expect(console.locator(".live")).to_have_attribute("data-live", "live")
    await console.get_by_role("button", name="Sign out").click()
    await expect(console.get_by_label("Management key")).to_be_visible()
    assert await console.evaluate("sessionStorage.getItem('plughost.key')") is None


async def test_overview_updates_live_when_a_breaker_opens(console: Page, live: Running) -> None:
    await expect(console.locator(".open-breakers")).to_have_count(0)
    for _ in range(3):
        await live.host.manager.execute("flaky", "explode")
    await expect(console.locator(".open-breakers")).to_contain_text("flaky")


async def test_theme_toggle_and_phone_width(console: Page) -> None:
    before = await console.evaluate("getComputedStyle(document.body).backgroundColor")
    await console.get_by_role("button", name="Switch between dark and light").click()
    await expect(console.locator("html")).to_have_attribute("data-theme", "dark")
    assert await console.evaluate("getComputedStyle(document.body).backgroundColor") != before
    await console.set_viewport_size({"width": 390, "height": 800})
    nav = console.get_by_role("navigation", name="Pages")
    await expect(nav).to_be_hidden()
    await console.get_by_role("button", name="Menu").click()
    await expect(nav).to_be_visible()
    await nav.get_by_role("link", name="Plugins").focus()
    await console.keyboard.press("Enter")
    await expect(console).to_have_url(re.compile(r"#/plugins$"))
    await expect(nav).to_be_hidden()


async def test_unknown_page(console: Page) -> None:
    await console.goto(console.url.split("#")[0] + "#/nowhere")
    await expect(console.get_by_role("heading", name="Not found")).to_be_visible()
