"""The commands and permissions page and the events and logs tails, in Chromium."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from tests.console.conftest import CHAT_PLUGIN, sign_in
from tests.manage.support import Running, serve


async def go(console: Page, link: str, heading: str) -> Page:
    await console.get_by_role("navigation", name="Pages").get_by_role("link", name=link).click()
    await expect(console.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    return console


async def test_registry_search_and_a_conflict_appearing_live(console: Page, live: Running) -> None:
    page = await go(console, "Commands", "Commands and permissions")
    pic = page.locator("table.commands tr[data-command=pic]")
    await expect(pic).to_have_count(1)
    await expect(pic).to_contain_text("chat")
    await expect(pic).to_contain_text("an image for you")
    built_in = page.locator("table.commands tr[data-command=plugins]")
    await expect(built_in).to_contain_text("built-in")
    await expect(built_in).to_contain_text("/plugins enable <plugin_id>")
    await expect(page.locator(".command-issues")).to_be_empty()

    search = page.get_by_label("Search commands")
    await search.fill("IMAGE")
    await expect(page.locator("table.commands tbody tr")).to_have_count(1)
    await expect(page.locator(".command-count")).to_have_text(re.compile(r"^1 of \d+ commands$"))
    await search.fill("no such command anywhere")
    await expect(page.locator("table.commands tbody")).to_have_text("No command matches.")
    await search.fill("")

    copycat = live.workspace / "extra" / "copycat"  # the same /pic, at a higher priority
    copycat.mkdir(parents=True)
    (copycat / "plugin.toml").write_text('id = "copycat"\nversion = "1.0.0"\npriority = 5\n', encoding="utf-8")
    (copycat / "plugin.py").write_text(CHAT_PLUGIN, encoding="utf-8")
    answer = await live.client.post("/api/v1/plugins/load", json={"path": str(copycat)})
    assert answer.status_code == 200, answer.text
    await expect(page.locator(".command-issues")).to_contain_text("copycat wins over chat")
    winner = page.locator("tr.conflict[data-command=pic]")  # chat's /pic has no name left: it is gone
    await expect(winner).to_have_count(1)
    await expect(winner).to_contain_text("won /pic over chat")
    await expect(winner.get_by_role("link", name="copycat")).to_have_attribute("href", "#/plugins/copycat")


async def test_permit_and_cancel_a_grant(console: Page, live: Running) -> None:
    page = await go(console, "Commands", "Commands and permissions")
    everyone = page.locator("table.grants tr[data-permittee='*'][data-permission='chat:command.pic']")
    await expect(everyone).to_contain_text("an image for you")  # with the permission's description
    who, what = page.get_by_label("Permittee"), page.get_by_label("Permission", exact=True)

    await who.fill("bad one")
    await what.fill("plughost:*")
    await what.press("Enter")
    await expect(page.locator("#permit-error")).to_contain_text("invalid permittee id 'bad one'")
    await expect(who).to_have_attribute("aria-invalid", "true")
    await expect(who).to_be_focused()  # the keyboard is where the problem is
    assert "bad one" not in str((await live.client.get("/api/v1/permissions")).json()["grants"])

    await who.fill("u42")
    await page.get_by_role("button", name="Permit").click()
    grant = page.locator("table.grants tr[data-permittee=u42][data-permission='plughost:*']")
    await expect(grant).to_have_count(1)
    await expect(page.locator("#permit-error")).to_be_hidden()
    assert (await live.client.get("/api/v1/permissions")).json()["grants"]["u42"] == ["plughost:*"]

    await page.get_by_role("button", name="Cancel plughost:* for u42").click()
    await expect(grant).to_have_count(0)
    assert "u42" not in (await live.client.get("/api/v1/permissions")).json()["grants"]


def tail(page: Page, name: str) -> Locator:
    return page.locator(f"[data-tail={name}]")


async def test_events_tail_follows_live_pauses_and_resumes_without_loss(console: Page, live: Running) -> None:
    page = await go(console, "Events & logs", "Events and logs")
    events = tail(page, "events")
    lines = events.locator(".event-line")
    await expect(lines.filter(has_text="loaded version 1.0.0")).to_have_count(5)  # the history
    await expect(events.locator(".tail-state")).to_have_text("live")

    await live.host.manager.disable_plugin("plain")
    await expect(lines.last).to_contain_text("plain disabled")
    await expect(lines.last).to_have_attribute("data-type", "disable")
    before = await lines.count()

    await events.get_by_role("button", name="Pause").click()
    await expect(events.locator(".tail-state")).to_have_text("paused")
    await live.host.manager.enable_plugin("plain")
    await live.host.manager.disable_plugin("plain")
    # the shell's own live stream saw both (so a following tail would have too); this one shows none
    await expect(events.locator(".tail-waiting")).to_have_text("2 new while paused")
    await expect(lines).to_have_count(before)

    await events.get_by_role("button", name="Resume").click()
    await expect(lines).to_have_count(before + 2)
    await expect(events.locator(".tail-waiting")).to_be_hidden()
    tail_types = [await line.get_attribute("data-type") for line in (await lines.all())[-3:]]
    assert tail_types == ["disable", "enable", "disable"]
    ids = [int(await line.get_attribute("data-id") or 0) for line in await lines.all()]
    assert ids == sorted(set(ids)), ids  # in order, none twice

    await events.get_by_label("Plugin", exact=True).select_option("plain")  # a filter restarts the tail from history
    await expect(lines).to_have_count(5)  # load, enable, disable, enable, disable
    await events.locator("summary").click()
    await events.get_by_label("enable", exact=True).check()
    await expect(lines).to_have_count(2)
    await live.host.manager.enable_plugin("plain")
    await expect(lines).to_have_count(3)
    await expect(lines.last).to_have_attribute("data-type", "enable")


async def test_logs_tail_with_a_level_filter(console: Page, live: Running) -> None:
    page = await go(console, "Events & logs", "Events and logs")
    logs = tail(page, "logs")
    await expect(logs.locator(".tail-state")).to_have_text("live")
    await logs.get_by_label("Level").select_option("warning")
    await expect(logs.locator(".tail-state")).to_have_text("live")
    logging.getLogger("plughost.plugin.plain").info("just saying")  # before the warning: filtered out
    await live.host.manager.execute("settings", "shout", {"text": "hey"})
    lines = logs.locator(".record-line")
    await expect(lines).to_have_count(1)
    await expect(lines).to_contain_text("shouting hey")
    await expect(lines).to_have_attribute("data-level", "warning")

    await logs.get_by_label("Level").select_option(label="info and above")  # info and above, from history
    await expect(lines).to_have_count(2)
    await expect(lines.first).to_contain_text("just saying")
    await logs.get_by_label("Plugin", exact=True).select_option("plain")
    await expect(lines).to_have_count(1)
    await expect(lines).to_contain_text("just saying")


async def test_a_gap_is_announced_when_history_aged_out(page: Page, console_workspace: Path) -> None:
    async with serve(console_workspace, event_records=10) as small:
        await sign_in(page, small)
        await go(page, "Events & logs", "Events and logs")
        events = tail(page, "events")
        await expect(events.locator(".tail-state")).to_have_text("live")
        await events.get_by_role("button", name="Pause").click()
        await expect(events.locator(".tail-state")).to_have_text("paused")
        for _ in range(6):  # 12 events: the host keeps the newest 10
            await small.host.manager.disable_plugin("plain")
            await small.host.manager.enable_plugin("plain")
        await events.get_by_role("button", name="Resume").click()
        await expect(events.locator(".missed")).to_have_text(re.compile(r"2 events were missed"))
        await expect(events.locator(".missed ~ .event-line")).to_have_count(10)
