"""LurkBot's prompt injection: the results of every `execute()` plugin as a block for the system prompt.

```python
block = await plugin_results_for_prompt(manager, {"user_id": "42", "input_data": {"user_message": text}})
system_prompt = base_prompt + ("\\n\\n" + block if block else "")
```

The block has LurkBot's shape, plugins in priority order (highest first):

```
=== Plugin Execution Results ===

[weather]
Status: Success
Result: {"temperature": 25, "condition": "sunny"}
Execution Time: 0.50s
```

A failing plugin never fails the agent's run: it is left out (or shown with `Status: Failed` and
its error when `include_errors`), and even a manager that raises yields an empty block.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from plughost.sdk.models import PluginExecutionContext, PluginExecutionResult

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

log = logging.getLogger("plughost.agent")
HEADER = "=== Plugin Execution Results ==="
DEFAULT_RESULT_MAX_CHARS = 2000


async def plugin_results_for_prompt(
    manager: PluginManager,
    context: PluginExecutionContext | Mapping[str, Any] | None = None,
    include_errors: bool = False,
    *,
    plugin_names: Iterable[str] | None = None,
    result_max_chars: int = DEFAULT_RESULT_MAX_CHARS,
) -> str:
    """Run `execute_plugins(context)` (every enabled plugin with `execute`, or `plugin_names`) and
    format the results for a system prompt; "" when there is nothing to show. Never raises for a
    plugin's failure (nor for the manager's: that is logged and gives "")."""
    try:
        results = await manager.execute_plugins(context, plugin_names)
    except Exception:
        log.exception("executing the plugins for the prompt failed; the prompt gets no plugin results")
        return ""
    priority = {instance.id: instance.priority for instance in manager.list_plugins()}
    ordered = sorted(results.items(), key=lambda item: (-priority.get(item[0], 0), item[0]))
    return format_plugin_results(ordered, include_errors=include_errors, result_max_chars=result_max_chars)


def format_plugin_results(
    results: Mapping[str, PluginExecutionResult] | Iterable[tuple[str, PluginExecutionResult]],
    *,
    include_errors: bool = False,
    result_max_chars: int = DEFAULT_RESULT_MAX_CHARS,
) -> str:
    """LurkBot's block for results in the order given; failures only with `include_errors`; "" when empty."""
    items = results.items() if isinstance(results, Mapping) else results
    lines = [HEADER, ""]
    shown = 0
    for plugin_id, result in items:
        if not result.success and not include_errors:
            continue
        shown += 1
        lines.append(f"[{plugin_id}]")
        lines.append(f"Status: {'Success' if result.success else 'Failed'}")
        if result.success:
            lines.append(f"Result: {truncate(to_json_text(result.result), result_max_chars)}")
        else:
            lines.append(f"Error: {truncate(result.error or 'unknown error', result_max_chars)}")
        lines.append(f"Execution Time: {result.execution_time:.2f}s")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n" if shown else ""


def to_json_text(value: Any) -> str:
    """Compact JSON (non-ASCII kept; anything JSON cannot say becomes its text)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def truncate(text: str, limit: int) -> str:
    """`text`, or its first characters and how much was cut when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    note = f"… (truncated, {len(text)} characters)"
    return text[: max(0, limit - len(note))] + note
