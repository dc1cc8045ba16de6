"""The chat sandbox page in Chromium: scenes, messages, pokes, requests, replies as bubbles."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.console.conftest import PIXEL
from tests.manage.support import Running


async def open_chat(console: Page, chat: str = "group", group: str = "123", user: str = "456") -> Page:
    await console.get_by_role("navigation", name="Pages").get_by_role("link", name="Chat sandbox").click()
    await expect(console.get_by_role("heading", name="Chat sandbox")).to_be_visible()
    await console.get_by_label("Chat", exact=True).select_option(chat)
    if chat == "group":
        await console.get_by_label("Group id").fill(group)
    await console.get_by_label("User id").fill(user)
    return console


async def test_a_command_reply_is_a_bubble_with_a_mention_and_an_image(console: Page) -> None:
    page = await open_chat(console)
    message = page.get_by_label("Message")
    await message.fill("/pic")
    await message.press("Enter")  # Enter sends
    mine = page.locator(".bubble.user")
    await expect(mine).to_have_count(1)
    await expect(mine).to_contain_text("/pic")
    reply = page.locator(".bubble.bot")
    await expect(reply).to_have_count(1)
    await expect(reply.locator(".mention")).to_have_text("@456")
    await expect(reply).to_contain_text("here you go")
    image = reply.locator("img")
    await expect(image).to_have_attribute("src", PIXEL)
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 1  # the image decoded
    await expect(reply.locator(".bubble-meta")).to_contain_text("group 123")
    await expect(message).to_have_value("")  # sent: the box is ready for the next one


async def test_poke_friend_request_and_the_scene_is_remembered(console: Page, live: Running) -> None:
    page = await open_chat(console, chat="private", user="456")
    await expect(page.get_by_label("Group id")).to_be_hidden()
    await page.get_by_role("button", name="Poke the bot").click()
    poked = page.locator(".bubble.bot")
    await expect(poked).to_contain_text("ouch, 456")
    await expect(poked.locator(".bubble-meta")).to_have_text("bot → user 456 · chat")
    await expect(page.get_by_role("button", name="Group request", exact=True)).to_be_disabled()

    await page.get_by_label("Request comment").fill("be my friend")
    await page.get_by_role("button", name="Friend request").click()
    await expect(page.locator(".bubble.note[data-kind=user]").last).to_have_text(
        "456 sent a friend request: “be my friend”"
    )
    await expect(page.locator(".bubble.note[data-kind=result]")).to_have_text(
        "No plugin answered the friend request (unhandled)."
    )

    await page.reload()  # the scene stays for this tab
    await expect(page.get_by_label("User id")).to_have_value("456")
    await expect(page.get_by_label("Chat", exact=True)).to_have_value("private")


async def test_owners_and_members_get_different_answers(console: Page) -> None:
    page = await open_chat(console, user="1")  # [commands] owners = [1]
    message = page.get_by_label("Message")
    await message.fill("/plugins")
    await message.press("Enter")
    await expect(page.locator(".bubble.bot").last).to_contain_text("chat 1.0.0 [enabled]")
    await page.get_by_label("User id").fill("456")
    await page.get_by_label("Role in the group").select_option("owner")  # a group owner is not a host owner
    await message.fill("/plugins")
    await message.press("Enter")
    await expect(page.locator(".bubble.bot")).to_have_count(2)
    await expect(page.locator(".bubble.bot").last).to_contain_text("permission denied")


async def test_invalid_input_is_shown_by_the_input_and_nothing_is_sent(console: Page) -> None:
    page = await open_chat(console, group="")
    message = page.get_by_label("Message")
    await message.fill("hello")
    await message.press("Enter")
    error = page.locator("#chat-error")
    await expect(error).to_have_text("group_id is required for a group chat")
    await expect(page.get_by_label("Group id")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".bubble.user")).to_have_count(0)
    await expect(message).to_have_value("hello")  # kept to send again

    await message.fill("[CQ:at,qq=1")  # a malformed CQ code: 422 from the server's parser
    await page.get_by_label("Group id").fill("123")
    await page.get_by_role("button", name="Send").click()
    await expect(error).to_contain_text("CQ")
    await expect(page.get_by_label("Message")).to_have_attribute("aria-invalid", "true")

    await message.fill("[CQ:face,id=14] hi [CQ:at,qq=all]")
    await page.get_by_role("button", name="Send").click()
    await expect(error).to_be_hidden()
    mine = page.locator(".bubble.user")
    await expect(mine.locator(".face")).to_have_text("☺14")
    await expect(mine.locator(".mention")).to_have_text("@all")
    await expect(page.locator(".bubble.note[data-kind=result]")).to_have_text(
        "No plugin answered the message (unhandled)."
    )


async def test_phone_width_in_the_dark(console: Page) -> None:
    await console.get_by_role("button", name="Switch between dark and light").click()
    await console.set_viewport_size({"width": 390, "height": 800})
    await console.goto(console.url.split("#")[0] + "#/chat")
    message = console.get_by_label("Message")
    await message.fill("/pic")
    await message.press("Enter")
    await expect(console.locator(".bubble.bot img")).to_be_visible()
    assert await console.evaluate("document.documentElement.scrollWidth") <= 390
    style = "getComputedStyle(document.querySelector('.bubble.bot'))"
    colours = await console.evaluate(f"[{style}.color, {style}.backgroundColor]")
    assert colours == ["rgb(228, 232, 239)", "rgb(26, 31, 40)"]  # the dark theme's text on its panels
