"""Generated protobuf modules (python tools/gen_protos.py)."""
