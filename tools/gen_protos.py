"""Regenerate the Python modules of every .proto under src/plughost/runtime/proto/.

    python3 tools/gen_protos.py

Needs grpcio-tools (a dev dependency): run under an interpreter without it, the script runs
itself again with the project's `.venv/bin/python` (`python3 tools/dev.py setup` creates it).
The generated *_pb2*.py files are committed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO_DIR = SRC / "plughost" / "runtime" / "proto"


def main() -> int:
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != venv_python.parent.parent.resolve():
            os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
        print("tools/gen_protos.py needs grpcio-tools: run `python3 tools/dev.py setup` first", file=sys.stderr)
        return 2

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(PROTO_DIR.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{SRC}",
        f"-I{include}",
        f"--python_out={SRC}",
        f"--pyi_out={SRC}",
        f"--grpc_python_out={SRC}",
        *(str(p.relative_to(SRC)) for p in protos),
    ]
    code = protoc.main(args)
    if code != 0:
        print(f"protoc failed with exit code {code}", file=sys.stderr)
        return int(code)
    for package in {p.parent for p in protos} | {PROTO_DIR}:
        init = package / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated protobuf modules (python tools/gen_protos.py)."""\n')
    print(f"generated {len(protos)} proto files under {PROTO_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
