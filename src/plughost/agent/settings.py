"""The `[agent]` table of `plughost.toml`: the model, the loop's limits, chat, tools and MCP.

```toml
[agent]
base_url = "https://api.openai.com/v1"   # any OpenAI-compatible chat-completions endpoint
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"           # the key is read from this variable at each request
system_prompt = "You are plughost's assistant. Use the tools when they help."
max_steps = 8                            # model round trips per question
max_tool_calls_per_step = 16             # more in one answer are refused (each gets an error result)

[agent.prompt]
plugin_results = false                   # append every `execute()` plugin's result to the system prompt
include_errors = false
result_max_chars = 2000

[agent.chat]
mention = true                           # "@bot what is 2+3?" goes to the agent
ask_command = "ask"                      # "/ask what is 2+3?" too ("" switches it off)
history_messages = 20                    # kept per conversation (user and assistant messages)
max_reply_chars = 1500                   # longer answers are split into several messages

[agent.tools]
commands = ["dice"]                      # plugins whose chat commands are tools too ("*": all)
default_permittees = []                  # who gets a new tool's permission (`tool:<plugin>.<method>`)

[agent.mcp]
http = true                              # serve MCP at /mcp on the management port
```

The host configuration keeps the table as read (`HostConfig.agent`); `AgentSettings.from_host_config`
validates it here. Unknown keys are errors naming the key, as everywhere in `plughost.toml`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plughost.core.config import HOST_CONFIG_FILE, describe_validation_error
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.core.config import HostConfig

DEFAULT_SYSTEM_PROMPT = (
    "You are the assistant of a plughost bot. Answer briefly. When a tool can answer a question or do "
    "what is asked, call it; say so when a tool fails."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptSettings(_Strict):
    """`[agent.prompt]`: LurkBot's prompt injection (results of every `execute()` plugin)."""

    plugin_results: bool = False
    include_errors: bool = False
    result_max_chars: int = Field(default=2000, ge=16)


class ChatSettings(_Strict):
    """`[agent.chat]`: which chat messages go to the agent and how answers come back."""

    enabled: bool = True
    mention: bool = True
    ask_command: str = "ask"
    history_messages: int = Field(default=20, ge=0, le=1000)
    conversations: int = Field(default=1000, ge=1)
    max_reply_chars: int = Field(default=1500, ge=50)
    max_replies: int = Field(default=5, ge=1)


class ToolSettings(_Strict):
    """`[agent.tools]`: what becomes a tool and who may call it."""

    commands: list[str] = Field(default_factory=list)
    default_permittees: list[str] = Field(default_factory=list)
    timeout_s: float | None = Field(default=None, gt=0)
    max_result_chars: int = Field(default=8000, ge=64)


class McpSettings(_Strict):
    """`[agent.mcp]`: the MCP server."""

    http: bool = True


class AgentSettings(_Strict):
    """Validated `[agent]` settings. The chat surface runs when a model is configured."""

    enabled: bool = True
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_steps: int = Field(default=8, ge=1, le=100)
    max_tool_calls_per_step: int = Field(default=16, ge=1, le=256)
    tool_concurrency: int = Field(default=8, ge=1, le=256)
    request_timeout_s: float = Field(default=60.0, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {value!r}")
        return value

    @property
    def model_configured(self) -> bool:
        """True when `base_url` and `model` say which model to talk to."""
        return bool(self.base_url and self.model)

    @property
    def chat_active(self) -> bool:
        """True when chat messages go to the agent (`[agent]` enabled, a model, `[agent.chat]` enabled)."""
        return self.enabled and self.model_configured and self.chat.enabled

    @classmethod
    def from_host_config(cls, config: HostConfig) -> AgentSettings:
        """Validate the `[agent]` table the host configuration read; errors name the file and the key."""
        try:
            return _Tables.model_validate({"agent": config.agent}).agent
        except ValidationError as exc:
            raise ConfigError(f"{config.source or HOST_CONFIG_FILE}: {describe_validation_error(exc)}") from exc


class _Tables(BaseModel):
    agent: AgentSettings
