"""The plugins page and the plugin detail page, in Chromium against a real host."""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Locator, Page, expect

from tests.manage.support import Running
from tests.test_cli import PLUGHOST, cli_env

BROKEN_MANIFEST = 'id = "Not A Valid Id!"\nversion = 3\n'
RICH_PLUGIN = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def describe(name: str, times: int = 2, tags: list[str] | None = None, loud: bool = False) -> dict:
    \"\"\"Echo the arguments back.\"\"\"
    return {"name": name, "times": times, "tags": tags, "loud": loud}
"""
RICH_SCHEMA = """
[config_schema]
type = "object"
required = ["mode"]
additionalProperties = false
[config_schema.properties.mode]
type = "string"
enum = ["fast", "safe"]
default = "safe"
[config_schema.properties.verbose]
type = "boolean"
[config_schema.properties.ratio]
type = "number"
minimum = 0
maximum = 1
default = 0.5
[config_schema.properties.tags]
type = "array"
items = { type = "string", minLength = 2 }
[config_schema.properties.limits]
type = "object"
[config_schema.properties.limits.properties.max]
type = "integer"
minimum = 1
[config_schema.properties.limits.properties.unit]
type = "string"
enum = ["s", "ms"]
"""


async def open_page(console: Page, fragment: str) -> None:
    await console.goto(console.url.split("#")[0] + fragment)


async def open_plugin(console: Page, plugin_id: str) -> None:
    await open_page(console, f"#/plugins/{plugin_id}")
    await expect(console.get_by_role("heading", name=plugin_id, level=1)).to_be_visible()


def row(console: Page, plugin_id: str) -> Locator:
    return console.locator(f"table.plugins tr[data-plugin='{plugin_id}']")


async def test_disable_from_the_table_and_see_changes_made_elsewhere(console: Page, live: Running) -> None:
    await open_page(console, "#/plugins")
    plain = row(console, "plain")
    await expect(plain.locator("td.state")).to_have_text("enabled")
    await plain.get_by_role("button", name="Disable").click()
    await expect(plain.locator("td.state")).to_have_text("disabled")
    await expect(console.locator(".toast.ok")).to_contain_text("plain disabled")
    answer = await live.client.get("/api/v1/plugins/plain")
    assert answer.json()["state"] == "disabled"
    await expect(plain.get_by_role("button", name="Enable")).to_be_enabled()
    # the CLI beside the host sees it too (it finds the host through .plughost/manage.json)
    cli = await asyncio.create_subprocess_exec(
        *PLUGHOST, "plugins", "info", "plain", "--json", "-w", str(live.workspace),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(),
    )  # fmt: skip
    out, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err
    assert json.loads(out)["state"] == "disabled"
    assert err.decode().startswith("via the running host at ")

    # a change made beside the page arrives through the live stream, without reloading
    # (how soon is measured by benchmarks/bench_console.py)
    await live.host.manager.enable_plugin("plain")
    await expect(plain.locator("td.state")).to_have_text("enabled")
    await expect(plain.get_by_role("button", name="Disable")).to_be_visible()


async def test_search_and_filters_narrow_the_table(console: Page, live: Running) -> None:
    await live.host.manager.disable_plugin("plain")
    await open_page(console, "#/plugins")
    rows = console.locator("table.plugins tbody tr[data-plugin]")
    await expect(rows).to_have_count(5)

    await console.get_by_label("Search").fill("fla")
    await expect(rows).to_have_count(1)
    await expect(row(console, "flaky")).to_be_visible()
    await console.get_by_label("Search").fill("nothing-like-this")
    await expect(console.locator("table.plugins td.empty")).to_contain_text("No plugin matches")
    await console.get_by_label("Search").fill("")

    await console.get_by_label("State").select_option("disabled")
    await expect(rows).to_have_count(1)
    await expect(row(console, "plain")).to_be_visible()
    await console.get_by_label("State").select_option("")
    await console.get_by_label("Runtime").select_option("native")
    await expect(rows).to_have_count(1)
    await expect(row(console, "example-c")).to_be_visible()

    # a phone: the less important columns go, the id, state and actions stay
    await console.set_viewport_size({"width": 390, "height": 800})
    example = row(console, "example-c")
    await expect(example.locator("td.calls")).to_be_hidden()
    await expect(example.locator("td.state")).to_be_visible()
    await expect(example.get_by_role("button", name="Disable")).to_be_visible()
    await example.get_by_role("link", name="example-c").click()
    await expect(console).to_have_url(re.compile(r"#/plugins/example-c$"))


async def test_config_errors_show_at_the_field_and_a_fixed_config_is_applied(console: Page, live: Running) -> None:
    await open_plugin(console, "settings")
    config = console.locator("section.config")
    await expect(config.locator(".field[data-field=greeting] label.required")).to_have_text("greeting")
    await config.get_by_label("greeting").fill("hello")
    await config.get_by_label("repeat").fill("99")
    await config.get_by_role("button", name="Save").click()

    repeat_error = config.locator(".field[data-field=repeat] .field-error")
    await expect(repeat_error).to_contain_text("99 is greater than the maximum of 10")
    await expect(config.get_by_label("repeat")).to_have_attribute("aria-invalid", "true")
    await expect(config.locator(".field[data-field=greeting] .field-error")).to_be_hidden()
    await expect(config.locator(".config-status")).to_contain_text("Not saved")
    assert live.host.manager.get_config("settings") == {}

    await config.get_by_label("repeat").fill("3")
    await expect(repeat_error).to_be_hidden()
    await config.get_by_role("button", name="Save").click()
    await expect(config.locator(".config-status")).to_have_text("Saved and applied.")
    assert live.host.manager.get_config("settings") == {"greeting": "hello", "repeat": 3}
    await expect(console.locator(".plugin-events li[data-type=reconfigure]")).to_contain_text("configuration applied")
    events = (await live.client.get("/api/v1/events", params={"types": "reconfigure"})).json()["events"]
    assert [event["plugin_id"] for event in events] == ["settings"]


async def test_a_value_with_line_breaks_is_edited_in_a_textarea_and_kept_when_another_field_is_saved(
    console: Page, live: Running
) -> None:
    multiline = 'first line\nsecond "quoted" line\n[not a table]'
    put = await live.client.put("/api/v1/plugins/settings/config", json={"greeting": multiline})
    assert put.status_code == 200, put.text
    await open_plugin(console, "settings")
    config = console.locator("section.config")
    greeting = config.get_by_label("greeting")
    await expect(greeting).to_have_js_property("tagName", "TEXTAREA")
    await expect(greeting).to_have_value(multiline)
    await config.get_by_label("repeat").fill("3")
    await config.get_by_role("button", name="Save").click()
    await expect(config.locator(".config-status")).to_have_text("Saved and applied.")
    assert live.host.manager.get_config("settings") == {"greeting": multiline, "repeat": 3}


async def test_a_plugin_page_typed_with_the_singular_path_opens_that_plugin(console: Page, live: Running) -> None:
    await open_page(console, "#/plugin/settings")
    await expect(console.get_by_role("heading", name="settings", level=1)).to_be_visible()
    await open_page(console, "#/plugin")
    await expect(row(console, "settings")).to_be_visible()  # the list, not a page of plugin "undefined"


async def test_a_missing_required_field_is_named_at_that_field(console: Page, live: Running) -> None:
    await open_plugin(console, "settings")
    config = console.locator("section.config")
    await config.get_by_label("repeat").fill("2")
    await config.get_by_role("button", name="Save").click()
    await expect(config.locator(".field[data-field=greeting] .field-error")).to_contain_text("required")
    assert live.host.manager.get_config("settings") == {}


async def test_unsaved_changes_are_marked_until_saved(console: Page, live: Running) -> None:
    await open_plugin(console, "settings")
    config = console.locator("section.config")
    greeting = config.locator(".field[data-field=greeting]")
    await expect(greeting).not_to_have_class(re.compile(r"\bchanged\b"))
    await config.get_by_label("greeting").fill("hi")
    await expect(greeting).to_have_class(re.compile(r"\bchanged\b"))
    await expect(config.locator(".field[data-field=repeat]")).not_to_have_class(re.compile(r"\bchanged\b"))
    await config.get_by_label("greeting").fill("")
    await expect(greeting).not_to_have_class(re.compile(r"\bchanged\b"))
    await config.get_by_label("greeting").fill("hi")
    await config.get_by_label("greeting").press("Enter")  # submits the form, like the Save button
    await expect(config.locator(".config-status")).to_have_text("Saved and applied.")
    await expect(greeting).not_to_have_class(re.compile(r"\bchanged\b"))
    assert live.host.manager.get_config("settings") == {"greeting": "hi"}


async def test_every_schema_type_has_a_field_and_nested_errors_find_theirs(console: Page, live: Running) -> None:
    directory = live.workspace / "plugins" / "rich"
    directory.mkdir()
    (directory / "plugin.toml").write_text(f'id = "rich"\nversion = "1.0.0"\n{RICH_SCHEMA}', encoding="utf-8")
    (directory / "plugin.py").write_text(RICH_PLUGIN, encoding="utf-8")
    await live.host.manager.load_plugin(directory)
    await open_plugin(console, "rich")
    config = console.locator("section.config")
    await expect(config.get_by_label("mode")).to_have_value("1")  # the default, "safe"
    await expect(config.get_by_label("ratio")).to_have_value("0.5")
    await config.get_by_label("verbose").check()
    await config.get_by_role("button", name="Add tags").click()
    await config.get_by_label("tags 1", exact=True).fill("a")
    await config.get_by_role("button", name="Add tags").click()
    await config.get_by_label("tags 2", exact=True).fill("beta")
    await config.get_by_label("max").fill("0")
    await expect(config.locator(".field[data-field='limits.max']")).to_have_class(re.compile(r"\bchanged\b"))
    await config.get_by_role("button", name="Save").click()
    await expect(config.locator(".field[data-field=tags] .field-error")).to_contain_text("'a' is too short")
    await expect(config.locator(".field[data-field='limits.max'] .field-error")).to_contain_text("minimum of 1")
    assert live.host.manager.get_config("rich") == {}

    await config.get_by_label("tags 1", exact=True).fill("ab")
    await config.get_by_label("max").fill("5")
    await config.get_by_label("unit").select_option("ms")
    await config.get_by_role("button", name="Save").click()
    await expect(config.locator(".config-status")).to_have_text("Saved and applied.")
    expected = {
        "mode": "safe",
        "verbose": True,
        "ratio": 0.5,
        "tags": ["ab", "beta"],
        "limits": {"max": 5, "unit": "ms"},
    }
    assert live.host.manager.get_config("rich") == expected
    await config.get_by_role("button", name="Remove tags 1").click()
    await expect(config.locator(".field[data-field=tags]")).to_have_class(re.compile(r"\bchanged\b"))

    # the call form reads a pydantic input schema: defaults shown, an optional list left out
    call = console.locator("section.call")
    await expect(call).to_contain_text("Echo the arguments back.")
    await expect(call.get_by_label("Times")).to_have_value("2")
    await call.get_by_label("Name").fill("Ada")
    await call.get_by_label("Loud").check()
    await call.get_by_role("button", name="Call").click()
    result = call.locator(".call-result pre")
    await expect(result).to_contain_text('"loud": true')
    await expect(result).to_contain_text('"times": 2')
    await expect(result).to_contain_text('"tags": null')


async def test_a_tripped_breaker_shows_open_and_clears(console: Page, live: Running) -> None:
    await open_plugin(console, "flaky")
    breaker = console.locator("section.health .breaker-state")
    await expect(breaker).to_have_text("closed")
    for _ in range(3):
        await live.host.manager.execute("flaky", "explode")
    await expect(breaker).to_have_text("open")
    health = console.locator("section.health")
    await expect(health.locator("tr[data-handler=explode] td").nth(2)).to_have_text("3")
    await expect(health.locator(".recent-errors li").first).to_contain_text("flaky exploded")
    source = live.host.workspace / "plugins" / "flaky" / "plugin.py"  # where in the plugin it was raised
    await expect(health.locator(".recent-errors li code").nth(1)).to_have_text(
        re.compile(rf"^{re.escape(str(source))}:\d+$")
    )
    await health.get_by_role("button", name="Clear breaker").click()
    await expect(breaker).to_have_text("closed")
    assert str(live.host.manager.guard.breaker("flaky").state) == "closed"


async def test_call_a_method_from_its_schema(console: Page) -> None:
    await open_plugin(console, "settings")
    call = console.locator("section.call")
    await expect(call.get_by_label("Method")).to_have_value("echo")
    await call.get_by_label("Text").fill("hello from the form")
    await call.get_by_role("button", name="Call").click()
    result = call.locator(".call-result")
    await expect(result).to_have_attribute("data-success", "true")
    await expect(result.locator("pre")).to_have_text('"hello from the form"')

    # the plugin's log follows live: a warning it logs during a call shows up
    await call.get_by_label("Method").select_option("shout")
    await call.get_by_label("Text").fill("through the form")
    await call.get_by_role("button", name="Call").click()
    await expect(console.locator("section.logs .log-line")).to_contain_text(["shouting through the form"])

    await call.get_by_label("Method").select_option("boom")
    await expect(call.locator(".no-args")).to_be_visible()
    await call.get_by_role("button", name="Call").click()
    await expect(result).to_have_attribute("data-success", "false")
    await expect(result).to_contain_text("kaboom")


async def test_native_resource_pages_are_framed_without_the_console_origin(console: Page) -> None:
    await open_plugin(console, "example-c")
    pages = console.locator("section.pages")
    await expect(pages).to_contain_text("a page")
    await expect(console.locator("iframe.resource")).to_be_hidden()
    await pages.get_by_role("button", name="Example C", exact=True).click()
    frame = console.frame_locator("iframe.resource")
    await expect(frame.get_by_text("Hello from C")).to_be_visible()
    sandbox = await console.locator("iframe.resource").get_attribute("sandbox")
    assert sandbox is not None
    assert "allow-same-origin" not in sandbox
    # the plugin's page runs in an opaque origin: the console's session storage is out of its reach
    page = next(frame for frame in console.frames if frame.url.endswith("/example-c/index.html"))
    assert await page.evaluate("() => self.origin") == "null"
    reach = "() => { try { return parent.sessionStorage.getItem('plughost.key'); } catch (e) { return e.name; } }"
    assert await page.evaluate(reach) == "SecurityError"
    await pages.get_by_role("button", name="Example C status").click()
    await expect(frame.get_by_text('"greeting"')).to_be_visible()
    # the descriptor lists its routes, commands and interceptors
    descriptor = console.locator("section.descriptor")
    await expect(descriptor.locator("table.http")).to_contain_text("/v0/management/example-c/status")
    await expect(descriptor.locator("table.interceptors")).to_contain_text("pre_handle")


async def test_an_invalid_plugin_shows_every_error(console: Page, live: Running) -> None:
    broken = live.workspace / "plugins" / "broken"
    broken.mkdir()
    (broken / "plugin.toml").write_text(BROKEN_MANIFEST, encoding="utf-8")
    await open_page(console, "#/plugins")
    item = console.locator(".invalid-plugins li.discovered[data-plugin=broken]")
    await expect(item).to_have_count(0)
    await console.get_by_role("button", name="Rescan").click()
    await expect(item).to_contain_text("invalid")
    errors = item.locator("ul.errors li")
    await expect(errors).to_have_count(2)
    await expect(errors.nth(0)).to_contain_text("is not a valid plugin id")
    await expect(errors.nth(1)).to_contain_text("version")
    await expect(row(console, "broken")).to_have_count(0)


async def test_a_source_only_plugin_is_built_from_the_page_and_a_failed_build_says_why(
    console: Page, live: Running
) -> None:
    directory = live.workspace / "plugins" / "unbuilt"
    (directory / "scripts").mkdir(parents=True)
    (directory / "plugin.toml").write_text('id = "unbuilt"\nversion = "1.0.0"\nruntime = "process"\n', encoding="utf-8")
    (directory / "scripts" / "build.sh").write_text("echo 'no compiler here'\nexit 3\n", encoding="utf-8")
    live.host.manager.discover()
    await open_page(console, "#/plugins")
    item = console.locator(".source-only li.discovered[data-plugin=unbuilt]")
    await item.get_by_role("button", name="Build").click()
    await expect(console.locator(".toast.error")).to_contain_text("exit code 3")
    # the attempt is a plugin in state error now, with the build's output as its reason
    failed = row(console, "unbuilt")
    await expect(failed.locator("td.state")).to_have_text("error")
    await expect(failed.locator("td.id")).to_contain_text("no compiler here")
    await expect(item).to_have_count(0)
