"""Regenerate generated/*_pb2*.py from proto/*.proto (needs grpcio-tools): python gen.py"""

from pathlib import Path

import grpc_tools
from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
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
