"""A plugin that fails on purpose.

`fail` always raises, `hang` never returns (the guard's timeout stops waiting for it), `ok`
succeeds — call `fail` three times and the breaker isolates the plugin; `ok` is then rejected
until the cooldown has passed and one trial call succeeds.
"""

import asyncio

from plughost.sdk import Plugin, PluginExecutionContext

plugin = Plugin()


@plugin.method("fail")
def fail() -> None:
    """Always raises."""
    raise RuntimeError("this plugin fails on purpose")


@plugin.method("hang")
async def hang() -> None:
    """Never returns; the guard times it out."""
    await asyncio.Event().wait()


@plugin.method("ok")
def ok() -> str:
    """Succeeds."""
    return "ok"


@plugin.execute
async def run(context: PluginExecutionContext) -> str:
    raise RuntimeError(f"flaky refuses to run for {context.user_id or 'anyone'}")
