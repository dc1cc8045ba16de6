"""The market page, in Chromium against a real host whose market reads a test index served over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from tests.console.test_plugins import open_page
from tests.manage.support import Running
from tests.market.conftest import FileServer, Index, market_config, python_plugin


@pytest.fixture
def market_index(tmp_path: Path) -> Iterator[Index]:
    root = tmp_path / "http"
    root.mkdir()
    with FileServer(root) as server:
        yield Index(server, "test")


@pytest.fixture
def console_workspace(tmp_path: Path, market_index: Index) -> Path:
    """Replaces the console's workspace: no plugins yet, and a [market] naming the test index (read at start)."""
    src = tmp_path / "src"
    market_index.publish(python_plugin(src, "greeter", "1.0.0"))
    market_index.publish(python_plugin(src, "greeter", "2.0.0"))
    market_index.publish(python_plugin(src, "tampered", "1.0.0"), sha256="f" * 64)
    workspace = tmp_path / "ws"
    (workspace / "plugins").mkdir(parents=True)
    market_config(workspace, ("test", market_index.url))
    return workspace


async def expect_toast(console: Page, kind: str, text: str) -> None:
    await expect(console.locator(f".toast.{kind}", has_text=text).first).to_be_visible()


async def search(console: Page, words: str) -> None:
    await console.get_by_role("searchbox", name="Search", exact=True).fill(words)
    await console.get_by_role("button", name="Search", exact=True).click()


async def version_of(live: Running, plugin_id: str) -> str:
    answer = await live.client.post(f"/api/v1/plugins/{plugin_id}/execute", json={"method": "version"})
    assert answer.status_code == 200, answer.text
    result: str = answer.json()["result"]
    return result


async def test_refresh_search_install_update_roll_back_and_uninstall(console: Page, live: Running) -> None:
    await open_page(console, "#/market")
    await console.get_by_role("button", name="Refresh", exact=True).click()
    index = console.locator(".market-indexes li[data-index='test']")
    await expect(index.locator(".badge")).to_have_text("network")
    await expect(index).to_contain_text("2 plugins")

    await search(console, "greet")
    hits = console.locator("table.market-results tr.market-hit")
    await expect(hits).to_have_count(1)
    hit = console.locator("table.market-results tr[data-plugin='greeter']")
    await expect(hit.locator("td.latest")).to_have_text("2.0.0")
    await expect(hit.locator("td.installed")).to_have_text("–")
    await expect(hit).to_contain_text("the greeter plugin")

    # install an older version, chosen from the plugin's versions
    await hit.get_by_role("button", name="Install greeter", exact=True).click()
    await console.get_by_label("Version", exact=True).select_option("1.0.0")
    await console.get_by_role("button", name="Confirm install of greeter").click()
    await expect_toast(console, "ok", "install greeter 1.0.0 (enabled)")
    installed = console.locator("table.market-installed tr[data-plugin='greeter']")
    await expect(installed.locator("td.version")).to_have_text("1.0.0")
    await expect(installed.locator("td.state")).to_have_text("enabled")
    await expect(installed.locator("td.latest")).to_contain_text("2.0.0")
    await expect(hit.locator("td.installed")).to_have_text("1.0.0")
    assert await version_of(live, "greeter") == "1.0.0"

    await open_page(console, "#/plugins")
    await expect(console.locator("table.plugins tr[data-plugin='greeter'] td.state")).to_have_text("enabled")
    await open_page(console, "#/market")

    await installed.get_by_role("button", name="Update greeter", exact=True).click()
    await expect_toast(console, "ok", "update greeter 1.0.0 → 2.0.0 (enabled)")
    await expect(installed.locator("td.version")).to_have_text("2.0.0")
    assert await version_of(live, "greeter") == "2.0.0"

    await installed.get_by_role("button", name="Roll back greeter").click()
    await expect_toast(console, "ok", "greeter rolled back to 1.0.0 (was 2.0.0)")
    await expect(installed.locator("td.version")).to_have_text("1.0.0")
    assert await version_of(live, "greeter") == "1.0.0"

    history_button = installed.get_by_role("button", name="History of greeter")
    await history_button.click()
    await expect(history_button).to_have_attribute("aria-expanded", "true")
    await expect(console.locator("table.market-installed .market-history .badge")).to_have_text(
        ["install", "update", "rollback"]
    )

    await installed.get_by_role("button", name="Uninstall greeter", exact=True).click()
    await console.get_by_label("Also remove its configuration and data (purge)").check()
    await console.get_by_role("button", name="Confirm uninstall of greeter").click()
    await expect_toast(console, "ok", "greeter 1.0.0 uninstalled, with its configuration and data")
    await expect(installed).to_have_count(0)
    await expect(console.locator("table.market-installed td.empty")).to_be_visible()
    await expect(hit.locator("td.installed")).to_have_text("–")
    assert live.host.manager.get_plugin("greeter") is None

    await open_page(console, "#/plugins")
    await expect(console.locator("table.plugins td.empty")).to_have_text("No plugin is loaded.")


async def test_a_checksum_mismatch_shows_the_error_and_installs_nothing(console: Page, live: Running) -> None:
    await open_page(console, "#/market")
    await search(console, "tampered")
    hit = console.locator("table.market-results tr[data-plugin='tampered']")
    await hit.get_by_role("button", name="Install tampered", exact=True).click()

    # the install is held back on its way to the host: meanwhile the button is disabled and says so
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await console.route("**/api/v1/market/install", hold)
    confirm = console.get_by_role("button", name="Confirm install of tampered")
    await confirm.click()
    await expect(confirm).to_be_disabled()
    await expect(hit.locator(".market-status")).to_have_text("working…")
    release.set()

    failure = console.locator("table.market-results tr.market-sub.failed [role=alert]")
    await expect(failure).to_contain_text("Install failed")
    await expect(failure).to_contain_text("checksum_mismatch")
    await expect(failure).to_contain_text("expected: " + "f" * 64)
    await expect_toast(console, "error", "SHA-256")
    await expect(hit.locator(".market-status")).to_have_count(0)
    await expect(confirm).to_be_enabled()
    await expect(hit.locator("td.installed")).to_have_text("–")
    await expect(console.locator("table.market-installed td.empty")).to_have_text(
        "The market installed no plugin here."
    )

    assert (await live.client.get("/api/v1/market/installed")).json()["plugins"] == []
    assert live.host.manager.get_plugin("tampered") is None
    assert not any(path.name.startswith("tampered") for path in (live.workspace / "plugins").iterdir())
