"""Regenerate the Python modules of every .proto under src/plughost/runtime/proto/.

    python3 tools/gen_protos.py          # Python modules
    python3 tools/gen_protos.py --go     # and the Go code of the protos Go plugins use (GO_PROTOS)

Needs grpcio-tools (a dev dependency): run under an interpreter without it, the script runs
itself again with the project's `.venv/bin/python` (`python3 tools/dev.py setup` creates it).
The generated *_pb2*.py files are committed. `--go` builds protoc-gen-go (with its gRPC plugin)
from Debian's golang-github-golang-protobuf-1-3-dev in GOPATH mode and writes into `sdk/go/src`
(the Go files are committed as well).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO_DIR = SRC / "plughost" / "runtime" / "proto"
GO_SDK = ROOT / "sdk" / "go" / "src"
GO_PROTOS = ("plughost/runtime/proto/plughost_host_v1/host_services.proto",)  # their go_package says where
DEBIAN_GOPATH = "/usr/share/gocode"


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
    return generate_go(protoc, include) if "--go" in sys.argv[1:] else 0


def generate_go(protoc: object, include: Path) -> int:
    """Build protoc-gen-go from Debian's Go sources and generate the Go code of `GO_PROTOS`."""
    with tempfile.TemporaryDirectory() as scratch:
        plugin = Path(scratch) / "protoc-gen-go"
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{scratch}/gopath:{DEBIAN_GOPATH}"}
        built = subprocess.run(
            ["go", "build", "-o", str(plugin), "github.com/golang/protobuf/protoc-gen-go"], env=env, check=False
        )
        if built.returncode != 0:
            print("building protoc-gen-go failed: apt-get install golang-go golang-github-golang-protobuf-1-3-dev",
                  file=sys.stderr)  # fmt: skip
            return 2
        args = ["grpc_tools.protoc", f"-I{SRC}", f"-I{include}", f"--plugin=protoc-gen-go={plugin}",
                f"--go_out=plugins=grpc:{GO_SDK}", *GO_PROTOS]  # fmt: skip
        code = int(protoc.main(args))  # type: ignore[attr-defined]
    if code != 0:
        print(f"protoc (Go) failed with exit code {code}", file=sys.stderr)
        return code
    print(f"generated Go code of {len(GO_PROTOS)} proto file(s) under {GO_SDK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
