"""An agent loop over plughost: LurkBot's plugin results block in the system prompt, plugins as tools.

    OPENAI_API_KEY=sk-… python examples/agent/agent_loop.py "What is 17.5 + 24.5?"
    python examples/agent/agent_loop.py --base-url http://127.0.0.1:11434/v1 --model llama3.1 --no-key "Hi"
    python examples/agent/agent_loop.py --dry-run "Hi"     # print the system prompt and the tools only

Each turn: every enabled plugin with `execute()` runs on the question and its results are appended to
the system prompt (`plugin_results_for_prompt`); the conversation goes to the model with the plugins'
tools; the tool calls it asks for run concurrently through `call_tool`; until a final answer or
`--max-steps`. `plughost.agent.Agent` is this loop, ready made (`Agent(..., plugin_results=True)`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from plughost import PluginManager
from plughost.agent import ModelError, OpenAICompatible, Toolbox, plugin_results_for_prompt

WORKSPACE = Path(__file__).resolve().parents[1]  # examples/: calculator, greeter (execute), notes …
SYSTEM_PROMPT = "You are a helpful assistant. Use the tools when they help; answer briefly."


async def answer(question: str, args: argparse.Namespace) -> int:
    async with PluginManager(args.workspace) as manager:
        await manager.discover_and_load_all()
        context = {"user_id": "example", "input_data": question}
        block = await plugin_results_for_prompt(manager, context)  # "" when no plugin answered
        system = f"{SYSTEM_PROMPT}\n\n{block}" if block else SYSTEM_PROMPT
        toolbox = Toolbox(manager)
        tools = toolbox.openai_tools()
        if args.dry_run:
            print(system)
            print(json.dumps([t["function"]["name"] for t in tools]))
            return 0
        model = OpenAICompatible(args.base_url, args.model, None if args.no_key else args.api_key_env)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        try:
            for _step in range(args.max_steps):
                turn = await model.complete(messages, tools)
                if not turn.tool_calls:
                    print(turn.content or "")
                    return 0
                messages.append(turn.assistant_message())
                results = await asyncio.gather(*(toolbox.call_tool(c.name, c.arguments) for c in turn.tool_calls))
                for call, result in zip(turn.tool_calls, results, strict=True):
                    print(f"→ {call.name}({call.arguments_text()}) = {result.text(200)}", file=sys.stderr)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text(8000)})
            print(f"no answer after {args.max_steps} steps", file=sys.stderr)
            return 1
        except ModelError as exc:
            print(f"the model failed: {exc}", file=sys.stderr)
            return 1
        finally:
            await model.aclose()
            toolbox.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("question")
    parser.add_argument("--base-url", default="https://api.openai.com/v1")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY")
    parser.add_argument("--no-key", action="store_true", help="send no API key (local servers)")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--dry-run", action="store_true", help="print the system prompt and the tools, call no model")
    args = parser.parse_args()
    return asyncio.run(answer(args.question, args))


if __name__ == "__main__":
    sys.exit(main())
