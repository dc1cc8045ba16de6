"""The agent loop: the conversation and the caller's tools go to the model; the tool calls it asks
for run concurrently through `call_tool`; their results go back; until a final answer or the step limit.

```python
async with Agent(manager, model=OpenAICompatible(base_url, "gpt-4o-mini", "OPENAI_API_KEY")) as agent:
    run = await agent.run("What is 2 + 3?")
    print(run.answer)          # "5"
    print(run.tool_calls)      # [ToolCallRecord(name="calculator__add", …)]
```

Nothing a plugin or the model does makes `run` raise: a failing tool is an error result the model
reads, a model that fails ends the run with `stop_reason = "model_error"`, and a model that keeps
asking for tools ends it at `max_steps` (`stop_reason = "step_limit"`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plughost.agent.model import ChatModel, ModelError, ModelTurn, OpenAICompatible, ToolCallRequest
from plughost.agent.prompt import plugin_results_for_prompt
from plughost.agent.settings import DEFAULT_SYSTEM_PROMPT, AgentSettings
from plughost.agent.tools import Caller, Toolbox, ToolResult
from plughost.sdk.models import PluginExecutionContext

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

log = logging.getLogger("plughost.agent")
StopReason = Literal["answer", "step_limit", "model_error"]
TOO_MANY_CALLS = "too_many_tool_calls"


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call of a run: what the model asked for and what it got."""

    step: int
    id: str
    name: str
    arguments: str
    result: ToolResult


@dataclass
class AgentRun:
    """The outcome of one question."""

    answer: str
    stop_reason: StopReason
    steps: int
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stop_reason == "answer"


class Agent:
    """An agent over a plugin manager's tools.

    `model` is any `ChatModel` (`OpenAICompatible(...)`). `toolbox` defaults to every enabled
    plugin's tools; `caller` (default: unrestricted) decides which of them the model is offered and
    may call. With `plugin_results`, LurkBot's block of `execute()` results is appended to the
    system prompt of every run. Construction does no I/O; `aclose()` (or `async with`) releases
    the model's HTTP client and the toolbox the agent made.
    """

    def __init__(
        self,
        manager: PluginManager,
        *,
        model: ChatModel,
        toolbox: Toolbox | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_steps: int = 8,
        max_tool_calls_per_step: int = 16,
        tool_concurrency: int = 8,
        max_result_chars: int = 8000,
        caller: Caller | None = None,
        plugin_results: bool = False,
        include_errors: bool = False,
        result_max_chars: int = 2000,
    ) -> None:
        if max_steps < 1 or max_tool_calls_per_step < 1 or tool_concurrency < 1:
            raise ValueError("max_steps, max_tool_calls_per_step and tool_concurrency must be at least 1")
        self.manager = manager
        self.model = model
        self._owns_toolbox = toolbox is None
        self.toolbox = toolbox if toolbox is not None else Toolbox(manager)
        self.system_prompt = system_prompt
        self.max_steps = max_steps
        self.max_tool_calls_per_step = max_tool_calls_per_step
        self.tool_concurrency = tool_concurrency
        self.max_result_chars = max_result_chars
        self.caller = caller
        self.plugin_results = plugin_results
        self.include_errors = include_errors
        self.result_max_chars = result_max_chars

    @classmethod
    def from_settings(
        cls,
        manager: PluginManager,
        settings: AgentSettings,
        *,
        model: ChatModel | None = None,
        toolbox: Toolbox | None = None,
    ) -> Agent:
        """An agent configured by `[agent]` (the model from `base_url`, `model`, `api_key_env` unless given)."""
        if model is None:
            if not settings.model_configured:
                raise ModelError("[agent] needs base_url and model to talk to a model")
            assert settings.base_url is not None and settings.model is not None
            model = OpenAICompatible(
                settings.base_url,
                settings.model,
                settings.api_key_env,
                timeout_s=settings.request_timeout_s,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            )
        return cls(
            manager,
            model=model,
            toolbox=toolbox,
            system_prompt=settings.system_prompt,
            max_steps=settings.max_steps,
            max_tool_calls_per_step=settings.max_tool_calls_per_step,
            tool_concurrency=settings.tool_concurrency,
            max_result_chars=settings.tools.max_result_chars,
            plugin_results=settings.prompt.plugin_results,
            include_errors=settings.prompt.include_errors,
            result_max_chars=settings.prompt.result_max_chars,
        )

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_toolbox:
            self.toolbox.close()
        await self.model.aclose()

    # one question -----------------------------------------------------------------------------------
    async def system_message(self, context: PluginExecutionContext | Mapping[str, Any] | None = None) -> str:
        """The system prompt of a run (with the plugin results block when configured)."""
        prompt = self.system_prompt
        if self.plugin_results:
            block = await plugin_results_for_prompt(
                self.manager, context, self.include_errors, result_max_chars=self.result_max_chars
            )
            if block:
                prompt = f"{prompt}\n\n{block}" if prompt else block
        return prompt

    async def run(
        self,
        message: str,
        *,
        history: Sequence[Mapping[str, Any]] = (),
        caller: Caller | None = None,
        context: PluginExecutionContext | Mapping[str, Any] | None = None,
        conversation: str | None = None,
    ) -> AgentRun:
        """Answer `message` after `history` (earlier user/assistant messages) as `caller`."""
        caller = caller if caller is not None else self.caller
        if context is None:
            user = caller.sender.user_id if caller is not None else None
            context = PluginExecutionContext(
                user_id=str(user) if user is not None else None,
                channel_id=str(caller.sender.group_id) if caller is not None and caller.sender.group_id else None,
                session_id=conversation,
                input_data={"user_message": message},
            )
        system = await self.system_message(context)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.extend(dict(m) for m in history)
        messages.append({"role": "user", "content": message})
        records: list[ToolCallRecord] = []
        for step in range(1, self.max_steps + 1):
            tools = self.toolbox.openai_tools(caller)
            try:
                turn = await self.model.complete(messages, tools)
            except ModelError as exc:
                log.warning("agent: the model failed at step %d: %s", step, exc)
                return AgentRun(f"The model failed: {exc}", "model_error", step, records, messages, str(exc))
            calls = _unique_ids(turn.tool_calls)
            if not calls:
                answer = (turn.content or "").strip()
                messages.append({"role": "assistant", "content": turn.content or ""})
                return AgentRun(answer, "answer", step, records, messages)
            messages.append(ModelTurn(turn.content, calls, turn.finish_reason).assistant_message())
            results = await self._run_calls(step, calls, caller, conversation)
            records.extend(results)
            for record in results:
                messages.append(
                    {"role": "tool", "tool_call_id": record.id, "content": record.result.text(self.max_result_chars)}
                )
        log.warning("agent: no final answer after %d steps (%d tool calls)", self.max_steps, len(records))
        answer = f"I stopped after {self.max_steps} steps without a final answer ({len(records)} tool calls)."
        return AgentRun(answer, "step_limit", self.max_steps, records, messages, "step limit reached")

    async def _run_calls(
        self, step: int, calls: Sequence[ToolCallRequest], caller: Caller | None, conversation: str | None
    ) -> list[ToolCallRecord]:
        """Run the calls concurrently (at most `tool_concurrency` at once); results in the calls' order.

        Calls beyond `max_tool_calls_per_step` are not made: each gets an error result the model reads.
        """
        allowed, refused = calls[: self.max_tool_calls_per_step], calls[self.max_tool_calls_per_step :]
        limit = asyncio.Semaphore(self.tool_concurrency)

        async def one(call: ToolCallRequest) -> ToolResult:
            async with limit:
                return await self.toolbox.call_tool(call.name, call.arguments, caller=caller, conversation=conversation)

        async with asyncio.TaskGroup() as group:  # call_tool never raises: one failure cancels nothing
            tasks = [group.create_task(one(call), name=f"agent tool {call.name}") for call in allowed]
        records = [
            ToolCallRecord(step, call.id, call.name, call.arguments_text(), task.result())
            for call, task in zip(allowed, tasks, strict=True)
        ]
        for call in refused:
            error = (
                f"not called: at most {self.max_tool_calls_per_step} tool calls are made per step "
                f"({len(calls)} were asked for); ask for fewer"
            )
            records.append(
                ToolCallRecord(
                    step,
                    call.id,
                    call.name,
                    call.arguments_text(),
                    ToolResult(call.name, False, error=error, code=TOO_MANY_CALLS),
                )
            )
        return records


def _unique_ids(calls: Sequence[ToolCallRequest]) -> tuple[ToolCallRequest, ...]:
    """The calls with ids made unique (a model may repeat one; each result must name its call)."""
    seen: set[str] = set()
    out: list[ToolCallRequest] = []
    for index, call in enumerate(calls):
        call_id = call.id
        if call_id in seen:
            call_id = f"{call.id}_{index + 1}"
        seen.add(call_id)
        out.append(call if call_id == call.id else ToolCallRequest(call_id, call.name, call.arguments))
    return tuple(out)
