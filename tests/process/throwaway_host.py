"""A host process a test can lose: it starts one worker, makes the calls it is given, and reports.

    python throwaway_host.py '{"plugin": DIR, "sockets": DIR, "calls": [["method", {payload}], ...]}'

Each call's outcome is printed as a JSON line (`{"value": …}` or `{"error": …}`), then
`{"host": "alive"}`. The worker's log lines go to stderr. Tests use it for attacks on the worker's
parent (a test must never offer the test runner itself as the target).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from process_support import WORKER_OPTIONS, request_for

from plughost.runtime.placement import WorkerRuntime
from plughost.sdk.call import Call


async def main(plan: dict[str, object]) -> None:
    options = replace(WORKER_OPTIONS, socket_dir=Path(str(plan["sockets"])))
    handle = await WorkerRuntime(options).load(request_for(Path(str(plan["plugin"]))))
    try:
        for name, payload in plan["calls"]:  # type: ignore[attr-defined]
            outcome = await handle.call(Call(name, payload))
            line = {"value": outcome.value} if outcome.error is None else {"error": outcome.error.message}
            print(json.dumps(line), flush=True)
        print(json.dumps({"host": "alive"}), flush=True)
    finally:
        await handle.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    asyncio.run(main(json.loads(sys.argv[1])))
