"""Jank's argument maps: JSON-compatible values packed as `google.protobuf.Value` in `Any`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict, ParseDict

VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"


class NotAValueError(ValueError):
    """A map entry is not a packed `google.protobuf.Value`."""


def to_value(obj: Any) -> struct_pb2.Value:
    """A JSON-compatible Python value as a `Value` (numbers become doubles)."""
    value = struct_pb2.Value()
    ParseDict(_jsonable(obj), value)
    return value


def pack_map(data: Mapping[str, Any]) -> dict[str, any_pb2.Any]:
    """`{key: Any(Value)}` for Execute's args / data."""
    packed: dict[str, any_pb2.Any] = {}
    for key, item in data.items():
        holder = any_pb2.Any()
        holder.Pack(to_value(item))
        packed[str(key)] = holder
    return packed


def unpack_map(data: Mapping[str, any_pb2.Any], *, where: str = "response") -> dict[str, Any]:
    """Plain Python values of an `Any(Value)` map; anything else raises `NotAValueError` naming the key."""
    result: dict[str, Any] = {}
    for key, holder in data.items():
        if holder.type_url != VALUE_TYPE_URL:
            raise NotAValueError(
                f"{where} key '{key}' holds '{holder.type_url or '(empty type url)'}', "
                f"expected '{VALUE_TYPE_URL}' (pack every value with structpb.NewValue / anypb.New)"
            )
        value = struct_pb2.Value()
        if not holder.Unpack(value):
            raise NotAValueError(f"{where} key '{key}' does not decode as google.protobuf.Value")
        result[key] = MessageToDict(value)
    return result


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, str | bool):
        return obj
    if isinstance(obj, int | float):
        return float(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    raise TypeError(f"{type(obj).__name__} is not JSON-compatible")
