"""plughost for AI agents: prompt injection, plugins as tools, an agent loop, chat, and an MCP server.

```python
from plughost.agent import Agent, OpenAICompatible, Toolbox, plugin_results_for_prompt

block = await plugin_results_for_prompt(manager, context)             # LurkBot's prompt injection
result = await Toolbox(manager).call_tool("calculator__add", {"a": 2, "b": 3})
async with Agent(manager, model=OpenAICompatible(base_url, "gpt-4o-mini", "OPENAI_API_KEY")) as agent:
    print((await agent.run("What is 2 + 3?")).answer)
```

The MCP server (`plughost.agent.mcp_server`) needs the `agent` extra (`pip install 'plughost[agent]'`,
the official `mcp` SDK); nothing here imports it. See docs/agent.md.
"""

from plughost.agent.catalog import ToolCatalog, ToolSpec, build_tools, sanitise, unique_names
from plughost.agent.chat import AgentChat, attach_agent, conversation_key
from plughost.agent.conversations import ConversationStore, MemoryConversations, split_text
from plughost.agent.loop import Agent, AgentRun, ToolCallRecord
from plughost.agent.model import ChatModel, ModelError, ModelTurn, OpenAICompatible, ToolCallRequest, parse_completion
from plughost.agent.prompt import format_plugin_results, plugin_results_for_prompt
from plughost.agent.settings import AgentSettings
from plughost.agent.tools import Caller, Toolbox, ToolResult

__all__ = [
    "Agent",
    "AgentChat",
    "AgentRun",
    "AgentSettings",
    "Caller",
    "ChatModel",
    "ConversationStore",
    "MemoryConversations",
    "ModelError",
    "ModelTurn",
    "OpenAICompatible",
    "ToolCallRecord",
    "ToolCallRequest",
    "ToolCatalog",
    "ToolResult",
    "ToolSpec",
    "Toolbox",
    "attach_agent",
    "build_tools",
    "conversation_key",
    "format_plugin_results",
    "parse_completion",
    "plugin_results_for_prompt",
    "sanitise",
    "split_text",
    "unique_names",
]
