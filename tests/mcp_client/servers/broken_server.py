"""A hand-written stdio "MCP server" that breaks the protocol in the way its first argument names.

    silent        reads requests and never answers (initialize never finishes)
    exit          writes to stderr and exits with code 4 before answering anything
    garbage-init  answers `initialize` with a line that is not JSON
    garbage-call  initialises and lists one tool (`echo`), then answers calls with a line that is not JSON
    bad-shape     ... answers calls with JSON that names the request but is no JSON-RPC response
    bad-result    ... answers calls with a result that is not a tool result

Every other request after initialisation gets a proper answer, so the session itself stays usable.
"""

from __future__ import annotations

import json
import sys

MODE = sys.argv[1]
TOOL = {
    "name": "echo",
    "description": "echo",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def send(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    if MODE == "exit":
        print("broken server: giving up before the handshake", file=sys.stderr, flush=True)
        raise SystemExit(4)
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if request_id is None or MODE == "silent":
            continue
        if method == "initialize":
            if MODE == "garbage-init":
                print("Server ready!", flush=True)
                continue
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "broken", "version": "0.0.1"},
            }
            send({"jsonrpc": "2.0", "id": request_id, "result": result})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": request_id, "result": {"tools": [TOOL]}})
        elif method == "tools/call" and MODE == "garbage-call":
            print("calling echo... done", flush=True)
        elif method == "tools/call" and MODE == "bad-shape":
            send({"jsonrpc": "2.0", "id": request_id, "answer": "this is not where a result goes"})
        elif method == "tools/call" and MODE == "bad-result":
            send({"jsonrpc": "2.0", "id": request_id, "result": {"content": "not a list of blocks"}})
        else:
            send({"jsonrpc": "2.0", "id": request_id, "result": {}})


if __name__ == "__main__":
    main()
