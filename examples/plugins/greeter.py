"""A single-file plugin in LurkBot's style: `execute(context)` answers the input."""

from plughost.sdk import Plugin, PluginExecutionContext

plugin = Plugin(id="greeter", version="1.0.0", description="Greets whoever calls it.")


@plugin.execute
async def run(context: PluginExecutionContext) -> dict[str, str]:
    who = context.input_data or context.user_id or "stranger"
    return {"message": f"hello, {who}!"}
