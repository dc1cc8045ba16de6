"""An MCP server written with the `mcp` SDK's MCPServer (FastMCP), for the MCP client tests.

    python demo_server.py            # stdio
    python demo_server.py --http     # streamable HTTP on 127.0.0.1, port chosen by the kernel;
                                     # prints "PORT <n>" on stdout once it listens

Besides ordinary tools it has ones that misbehave (`die`) and ones that try what a sandbox
must refuse (`read`, `write`, `connect`, `run`, `fork`).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

app = MCPServer("demo", version="1.2.3", instructions="a server for tests", log_level="WARNING")


class Sum(BaseModel):
    total: int


@app.tool()
def add(a: int, b: int) -> Sum:
    """Add two whole numbers."""
    return Sum(total=a + b)


@app.tool(structured_output=False)
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@app.tool(structured_output=False)
def picture() -> list[object]:
    """A caption and a 1×1 PNG."""
    return ["a tiny picture", Image(data=PNG, format="png")]


@app.tool(structured_output=False)
def fail(message: str) -> str:
    """Always fails with `message`."""
    raise ToolError(message)


@app.tool(structured_output=False)
def die(code: int = 3) -> str:
    """The server exits in the middle of the call."""
    print(f"demo server: exiting with {code}", file=sys.stderr, flush=True)
    os._exit(code)


@app.tool(structured_output=False)
async def slow(seconds: float) -> str:
    """Answers after `seconds`."""
    await anyio.sleep(seconds)
    return "done"


@app.tool(structured_output=False)
async def grow(name: str, ctx: Context) -> str:
    """Adds a tool called `name` and tells the client the tool list changed."""
    app.add_tool(lambda: f"{name} was added", name=name, description=f"added by grow({name!r})")
    await ctx.session.send_tool_list_changed()
    return "grown"


@app.tool(structured_output=False)
def env(name: str) -> str:
    """The value of an environment variable ('<unset>' when it is not set)."""
    return os.environ.get(name, "<unset>")


@app.tool(structured_output=False)
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP request header ('<none>' without one, or over stdio)."""
    return (ctx.headers or {}).get(name.lower(), "<none>")


@app.tool(structured_output=False)
def where() -> str:
    """The server's working directory."""
    return os.getcwd()


@app.tool(structured_output=False)
def pid() -> int:
    """The server's process id."""
    return os.getpid()


def attempt(action: object) -> dict[str, object]:
    try:
        return {"ok": True, "value": action()}  # type: ignore[operator]
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": f"{type(exc).__name__}: {exc}"}


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, text: str) -> int:
    with open(path, "w") as handle:
        return handle.write(text)


def _fork() -> int:
    child = os.fork()
    if child == 0:
        os._exit(0)
    return os.waitpid(child, 0)[1]


@app.tool()
def read(path: str) -> dict[str, object]:
    """Try to read a file."""
    return attempt(lambda: _read(path))


@app.tool()
def write(path: str, text: str) -> dict[str, object]:
    """Try to write a file."""
    return attempt(lambda: _write(path, text))


@app.tool()
def connect(port: int) -> dict[str, object]:
    """Try to open a TCP connection to 127.0.0.1:`port`."""
    return attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())


@app.tool()
def run(argv: list[str]) -> dict[str, object]:
    """Try to run a program."""
    return attempt(lambda: subprocess.run(argv, capture_output=True, check=False).returncode)


@app.tool()
def fork() -> dict[str, object]:
    """Try to start a process."""
    return attempt(_fork)


@app.tool()
def replace() -> dict[str, object]:
    """Try to become another program (execve without a fork)."""
    return attempt(lambda: os.execv("/bin/true", ["/bin/true"]))


async def serve_http() -> None:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app.streamable_http_app(), log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[listener])


if __name__ == "__main__":
    if "--http" in sys.argv:
        anyio.run(serve_http)
    else:
        app.run()
