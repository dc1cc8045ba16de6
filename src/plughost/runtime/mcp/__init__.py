"""MCP servers as plugins (`runtime = "mcp"`): their tools become the plugin's methods.

`McpRuntime` starts a stdio server (`command = [...]`) or reaches one over streamable HTTP
(`url = "…"`), lists its tools into the descriptor and calls them through the one call contract;
a stdio server that exits is restarted with backoff like a process plugin, and `isolation =
"sandbox"` confines it with the worker's sandbox. See docs/mcp.md.

Importing this package imports neither the `mcp` SDK nor anyio: `McpRuntime.load()` imports
`plughost.runtime.mcp.handle`, with them, the first time.
"""

from __future__ import annotations

from plughost.runtime.mcp.runtime import HttpServer, McpOptions, McpRuntime, ServerSpec, StdioServer, server_spec

__all__ = ["HttpServer", "McpOptions", "McpRuntime", "ServerSpec", "StdioServer", "server_spec"]
