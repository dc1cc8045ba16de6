"""`OpenAICompatible` against a real HTTP server speaking the chat-completions protocol, and the
response shape recorded from OpenAI's API reference."""

from __future__ import annotations

import pytest

from plughost.agent import ModelError, OpenAICompatible, parse_completion
from tests.agent.support import Raw, answer, model_server, recorded, scripted

TOOLS = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]


def test_the_recorded_tool_call_response_of_openais_reference() -> None:
    turn = parse_completion(recorded("tool_calls"))
    assert turn.content is None
    assert turn.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("call_abc123", "get_current_weather", '{\n"location": "Boston, MA"\n}')
    ]
    assert turn.usage["total_tokens"] == 99
    assert turn.assistant_message() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
            }
        ],
    }
    final = parse_completion(recorded("answer"))
    assert (final.content, final.tool_calls, final.finish_reason) == ("Hello! How can I assist you today?", (), "stop")


async def test_request_and_answer_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_TEST_KEY", "sk-test")
    async with model_server(scripted(recorded("tool_calls"), answer("done"))) as server:
        model = OpenAICompatible(server.url, "gpt-test", "PLUGHOST_TEST_KEY", temperature=0.2)
        first = await model.complete([{"role": "user", "content": "weather?"}], TOOLS)
        second = await model.complete([{"role": "user", "content": "again"}], [])
        await model.aclose()
    assert first.tool_calls[0].name == "get_current_weather"
    assert second.content == "done"
    assert server.requests[0] == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.2,
    }
    assert "tools" not in server.requests[1]  # no tools: none offered (some servers refuse an empty list)
    assert server.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Raw(200, b"{this is not json"), "not JSON"),
        (Raw(500, b'{"error": {"message": "upstream exploded"}}'), "HTTP 500"),
        (Raw(200, b'{"object": "chat.completion", "choices": []}'), "without choices"),
        (Raw(200, b'{"error": {"message": "quota"}}'), "quota"),
        (Raw(200, b'{"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]}'), "without a function"),
        (Raw(200, b"[1, 2]"), "instead of a chat completion"),
    ],
)
async def test_bad_answers_are_model_errors(reply: Raw, says: str) -> None:
    async with model_server(scripted(reply)) as server:
        model = OpenAICompatible(server.url, "m")
        with pytest.raises(ModelError, match=says):
            await model.complete([{"role": "user", "content": "hi"}], [])
        await model.aclose()


async def test_missing_key_and_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGHOST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ModelError, match="PLUGHOST_NO_SUCH_KEY"):
        await OpenAICompatible("http://127.0.0.1:9/v1", "m", "PLUGHOST_NO_SUCH_KEY").complete([], [])
    async with model_server(scripted(answer("x"))) as server:
        url = server.url
    model = OpenAICompatible(url, "m")  # the server has stopped: nothing listens there now
    with pytest.raises(ModelError, match="cannot reach"):
        await model.complete([{"role": "user", "content": "hi"}], [])
    await model.aclose()
