"""Jank's argument maps: JSON-compatible values packed as `google.protobuf.Value` in `Any`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2, struct_pb2

from plughost.sdk import jsonio

VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"


class NotAValueError(ValueError):
    """A map entry is not a packed `google.protobuf.Value`."""


def to_value(obj: Any) -> struct_pb2.Value:
    """A JSON-compatible Python value as a `Value` (numbers become doubles); TypeError otherwise."""
    value = struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int | float):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, Mapping):
        fields = value.struct_value.fields
        for key, item in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {type(key).__name__}")
            fields[key].CopyFrom(to_value(item))
    elif isinstance(obj, list | tuple):
        values = value.list_value.values
        for item in obj:
            values.add().CopyFrom(to_value(item))
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON-compatible")
    return value


def from_value(value: struct_pb2.Value) -> Any:
    """The plain Python form of a `Value` (numbers are floats, as on the wire)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {key: from_value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    return None


def pack_map(data: Mapping[str, Any]) -> dict[str, any_pb2.Any]:
    """`{key: Any(Value)}` for Execute's args / data."""
    return {
        str(key): any_pb2.Any(type_url=VALUE_TYPE_URL, value=to_value(item).SerializeToString())
        for key, item in data.items()
    }


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
        try:
            value.ParseFromString(holder.value)
        except Exception as exc:
            raise NotAValueError(f"{where} key '{key}' does not decode as google.protobuf.Value: {exc}") from None
        result[key] = from_value(value)
    return result


def json_bytes(value: Any) -> bytes:
    """`value` as JSON bytes for the wire (models, descriptors, sets and tuples through `json_default`)."""
    return jsonio.dumps(value, json_default)


def json_default(obj: Any) -> Any:
    """`json.dumps` fallback for wire payloads: pydantic models, descriptors, sets and tuples."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")
