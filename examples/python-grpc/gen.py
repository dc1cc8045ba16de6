"""Regenerate generated/*_pb2*.py from proto/*.proto (needs grpcio-tools): python3 gen.py

Without grpcio-tools in this interpreter it runs itself again with the repository's
`.venv/bin/python` (`python3 tools/dev.py setup` creates it).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
try:
    import grpc_tools
    from grpc_tools import protoc
except ImportError:
    VENV_PYTHON = HERE.parents[1] / ".venv" / "bin" / "python"
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    raise SystemExit("gen.py needs grpcio-tools: run `python3 tools/dev.py setup` in the repository first") from None
include = Path(grpc_tools.__file__).parent / "_proto"
protos = sorted(str(p.relative_to(HERE / "proto")) for p in (HERE / "proto").glob("*.proto"))
raise SystemExit(
    protoc.main(
        [
            "protoc",
            f"-I{HERE / 'proto'}",
            f"-I{include}",
            f"--python_out={HERE / 'generated'}",
            f"--grpc_python_out={HERE / 'generated'}",
            *protos,
        ]
    )
)
