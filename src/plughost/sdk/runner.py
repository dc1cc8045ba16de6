"""Run one handler of a Python plugin for a `Call`: bind, call, answer — failures become values.

The in-process runtime (and so every worker, which hosts its plugin in-process) and the host's
own built-in commands run handlers through this one function.
"""

from __future__ import annotations

import asyncio
import difflib
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from plughost.sdk.binding import CallScope, jsonable, payload_event
from plughost.sdk.call import NOTHING, UNKNOWN_HANDLER, Call, Outcome, PluginError
from plughost.sdk.context import PluginContext
from plughost.sdk.events import Event, EventParseError
from plughost.sdk.jsonio import PLAIN
from plughost.sdk.plugin import Handler


async def run_handler(handler: Handler, call: Call, context: PluginContext, executor: Executor | None) -> Outcome:
    """The outcome of `handler` for `call`; whatever it raises (`SystemExit` included) is its error.

    Sync handlers run on `executor` (the plugin's own threads), never on the event loop; only
    the host's own handlers pass None and run inline. Only cancellation propagates.
    """
    if handler.trivial:
        return await run_trivial(handler.func, context.plugin_dir)
    event_type, event = handler.binding.event_only, call.event
    if event_type is not None and event is None and handler.is_async:
        event = _event_of(call.payload)  # a worker: the event arrived as JSON
    if event_type is not None and event is not None and handler.is_async:  # the bot pipeline's hot path
        if not isinstance(event, event_type):
            return NOTHING
        try:
            value = handler.answer(await handler.func(event), None)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:  # as below
            return Outcome(None, (), located_error(exc, context.plugin_dir))
        return NOTHING if value is None else Outcome(value)
    scope = None
    try:
        if handler.binding.takes_nothing:
            args: Any = ()
            kwargs: dict[str, Any] = {}
        else:
            scope = CallScope(call, context)
            bound = handler.binding.bind(scope)
            if bound is None:
                return NOTHING
            args, kwargs = bound
        if handler.is_async:
            result = await handler.func(*args, **kwargs)
        elif executor is None:
            result = handler.func(*args, **kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, partial(handler.func, *args, **kwargs))
        value = handler.answer(result, scope)
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except BaseException as exc:  # plugin code never stops the host, not even with SystemExit
        return Outcome(None, scope.sends() if scope is not None else (), located_error(exc, context.plugin_dir))
    return Outcome(value, scope.sends()) if scope is not None else Outcome(value)


def _event_of(payload: Any) -> Event | None:
    """The event a call's JSON payload carries; None when it has none, or one that does not parse
    (the general path then reports why)."""
    try:
        return payload_event(payload)
    except EventParseError:
        return None


async def run_trivial(func: Callable[[], Awaitable[Any]], plugin_dir: Path) -> Outcome:
    """`run_handler` for an async method without parameters: the hot path of the simplest calls."""
    try:
        value = await func()
        return Outcome(value if type(value) in PLAIN else jsonable(value))
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except BaseException as exc:  # as in run_handler
        return Outcome(None, (), located_error(exc, plugin_dir))


def located_error(exc: BaseException, plugin_dir: Path) -> PluginError:
    """The error of `exc`, with `detail["at"]` = the innermost `file:line` inside the plugin."""
    error = PluginError.from_exception(exc)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and Path(frame.filename).is_relative_to(plugin_dir):
            return replace(error, detail={**error.detail, "at": f"{frame.filename}:{frame.lineno}"})
    return error


def describe_error(error: PluginError) -> str:
    """`ValueError at plugin.py:5: bad credentials` (the type and place, when known)."""
    at = error.detail.get("at")
    head = (error.type or error.code) + (f" at {at}" if at else "")
    return head if error.message == error.type else f"{head}: {error.message}"


def unknown_handler(plugin_id: str, name: str, known: Any) -> Outcome:
    """The outcome of a call to a handler the plugin does not have: its methods, apart from the
    handlers the bot calls (`command:…`, `route.…`), and the name spelt most alike."""
    names = sorted(known)
    alike = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{alike[0]}'?" if alike else ""
    methods = [n for n in names if "." not in n and ":" not in n]
    others = [n for n in names if n not in methods]
    listed = f"its methods: {', '.join(methods) or 'none'}"
    if others:
        listed += f"; called by the host: {', '.join(others)}"
    return Outcome.failed(UNKNOWN_HANDLER, f"plugin '{plugin_id}' has no handler '{name}' ({listed}){hint}")
