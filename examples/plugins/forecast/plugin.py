"""A chat weather bot that shows the bot-authoring features in one place.

Try it in the console: `/as group 123 456`, then type `weather please` (it asks which city),
`temp in Oslo`, or `forecast stats`.

- message matchers: `@plugin.on_message(keyword=…)` and `regex=` with a named group;
- a conversation: `await ctx.prompt(…)` waits for the same user's next message in the chat;
- a schedule: `@plugin.schedule(every=…)` refreshes the forecasts every hour;
- shared state (`ctx.state`, with `incr`) and the message bus (`ctx.bus.publish` to the
  plugin's own topics, `@plugin.subscribe`).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from plughost.sdk import Plugin, PluginContext
from plughost.sdk.conversations import MessageContext, PromptTimeout

plugin = Plugin()
CITIES = ("Oslo", "Lisbon", "Shanghai")


def _temperature(city: str) -> int:
    return random.Random(city.lower()).randint(-5, 30)  # the same "forecast" for a city, every time


@plugin.on_load
async def setup(ctx: PluginContext) -> None:
    await refresh(ctx)


@plugin.schedule(every=timedelta(hours=1))
async def refresh(ctx: PluginContext) -> None:
    """Keep a forecast per city in the plugin's state (a real bot would call a weather API here)."""
    for city in CITIES:
        await ctx.state.set(city.lower(), _temperature(city), ttl=2 * 3600)


@plugin.on_message(keyword="weather", ignore_case=True)
async def weather(ctx: MessageContext, plugin_ctx: PluginContext) -> str:
    try:
        city = await ctx.prompt("Which city?", timeout=60)
    except PromptTimeout:
        return "never mind, then"
    return await _report(plugin_ctx, city.strip())


@plugin.on_message(regex=r"^temp in (?P<city>\w+)$", ignore_case=True)
async def temp_in(city: str, plugin_ctx: PluginContext) -> str:
    return await _report(plugin_ctx, city)


@plugin.on_message(fullmatch="forecast stats")
async def stats(plugin_ctx: PluginContext) -> str:
    asked = await plugin_ctx.state.get("asked", 0)
    heard = await plugin_ctx.state.get("heard", 0)
    return f"{asked} forecasts given, {heard} announced on the bus"


@plugin.subscribe("forecast.given")
async def count_announcements(plugin_ctx: PluginContext) -> None:
    await plugin_ctx.state.incr("heard")


async def _report(ctx: PluginContext, city: str) -> str:
    temperature: Any = await ctx.state.get(city.lower())
    if temperature is None:
        temperature = _temperature(city)
    await ctx.state.incr("asked")
    await ctx.bus.publish("forecast.given", {"city": city, "temperature": temperature})
    return f"{city}: {temperature} °C"
