"""The model side of the agent: an OpenAI-compatible chat-completions endpoint, over httpx.

```python
model = OpenAICompatible("https://api.openai.com/v1", "gpt-4o-mini", api_key_env="OPENAI_API_KEY")
turn = await model.complete(messages, tools)      # ModelTurn(content, tool_calls, finish_reason)
```

Anything that speaks `POST {base_url}/chat/completions` works (OpenAI, Azure-style gateways,
vLLM, llama.cpp, Ollama's `/v1`, LiteLLM …). Every way the endpoint can fail — unreachable, a
timeout, an HTTP error, a body that is not JSON or not a chat completion — is a `ModelError`
naming the endpoint and what was wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from plughost.errors import PlugHostError

ERROR_BODY_EXCERPT = 300


class ModelError(PlugHostError):
    """The model endpoint failed or answered something that is not a chat completion."""


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One tool call the model asks for; `arguments` is the JSON text it sent (or an object)."""

    id: str
    name: str
    arguments: str | Mapping[str, Any]

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """One answer of the model: text and/or tool calls."""

    content: str | None
    tool_calls: tuple[ToolCallRequest, ...] = ()
    finish_reason: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation (tool calls in the OpenAI shape)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_text()}}
                for c in self.tool_calls
            ]
        return message


class ChatModel(Protocol):
    """What the agent loop needs from a model."""

    async def complete(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> ModelTurn:
        """The model's next turn for `messages`, offered `tools` (OpenAI function tools)."""
        ...

    async def aclose(self) -> None: ...


class OpenAICompatible:
    """An OpenAI-compatible chat-completions endpoint.

    `api_key_env` names the environment variable holding the key (read at each request, never
    stored); None sends no key (local servers). Construction does no I/O: the HTTP client is made
    on the first request and closed by `aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        *,
        timeout_s: float = 60.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.headers = dict(headers or {})
        self.extra_body = dict(extra_body or {})
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAICompatible({self.base_url!r}, {self.model!r})"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def request_body(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if tools:
            body["tools"] = [dict(t) for t in tools]
            body["tool_choice"] = "auto"
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body | self.extra_body

    async def complete(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> ModelTurn:
        headers = {"Content-Type": "application/json", **self.headers}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        client = self._client
        if client is None:
            client = self._client = httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport)
        try:
            response = await client.post(self.url, json=self.request_body(messages, tools), headers=headers)
        except httpx.TimeoutException as exc:
            raise ModelError(f"the model endpoint {self.url} did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise ModelError(f"cannot reach the model endpoint {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise ModelError(
                f"the model endpoint {self.url} answered HTTP {response.status_code}: {_excerpt(response.text)}"
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise ModelError(
                f"the model endpoint {self.url} answered something that is not JSON: {_excerpt(response.text)}"
            ) from exc
        return parse_completion(data, where=self.url)

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ModelError(
                f"the environment variable {self.api_key_env} (api_key_env of [agent]) is not set: "
                "it holds the model endpoint's API key"
            )
        return key


def parse_completion(data: Any, *, where: str = "the model endpoint") -> ModelTurn:
    """A chat completion (`{"choices": [{"message": {...}, "finish_reason"}], "usage"}`) as a `ModelTurn`."""
    if not isinstance(data, Mapping):
        raise ModelError(f"{where} answered {type(data).__name__} instead of a chat completion object")
    if isinstance(data.get("error"), Mapping):  # some gateways answer errors with status 200
        error = data["error"]
        raise ModelError(f"{where} answered an error: {error.get('message') or json.dumps(error)[:ERROR_BODY_EXCERPT]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ModelError(f"{where} answered a completion without choices: {_excerpt(json.dumps(data, default=str))}")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise ModelError(f"{where} answered a choice without a message")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    if content is not None and not isinstance(content, str):
        content = str(content)
    calls: list[ToolCallRequest] = []
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ModelError(f"{where} answered tool_calls that are not a list")
    for index, raw in enumerate(raw_calls):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("function"), Mapping):
            raise ModelError(f"{where} answered tool call #{index + 1} without a function")
        function = raw["function"]
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{where} answered tool call #{index + 1} without a function name")
        arguments = function.get("arguments")
        if arguments is None:
            arguments = "{}"
        if not isinstance(arguments, str | Mapping):
            arguments = json.dumps(arguments, default=str)
        call_id = raw.get("id")
        calls.append(
            ToolCallRequest(call_id if isinstance(call_id, str) and call_id else f"call_{index + 1}", name, arguments)
        )
    usage = data.get("usage")
    finish = choice.get("finish_reason")
    return ModelTurn(
        content, tuple(calls), finish if isinstance(finish, str) else None, usage if isinstance(usage, Mapping) else {}
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_BODY_EXCERPT else text[:ERROR_BODY_EXCERPT] + "…"
