"""Calls to a go-plugin plugin over its connection: Describe, plughost.v1 `Invoke`, Jank's `Execute`.

What every handle of such a plugin needs, whether the host started it or attached to it: which
protocol it speaks, its descriptor, the RPC of a call and the outcome of the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import grpc

from plughost.errors import InvocationError
from plughost.runtime.goplugin.connection import Connection
from plughost.runtime.goplugin.values import NotAValueError, json_bytes, pack_map, unpack_map
from plughost.runtime.proto.plughost_v1 import plugin_pb2 as v1
from plughost.runtime.proto.plugin import jank_pb2
from plughost.sdk.call import Call, Outcome, PluginError, SharedPayload, actions_from_json
from plughost.sdk.descriptor import Descriptor, SubscriptionSpec
from plughost.sdk.manifest import PluginManifest


class DescribeError(RuntimeError):
    """`Describe` failed or answered something that is not a descriptor."""


@dataclass(frozen=True)
class Described:
    """What `describe` learnt: the protocol (`plughost.v1` or `jank`), the descriptor, the invoke lane."""

    protocol: str
    descriptor: Descriptor
    invoke_lane: str = ""


async def describe(
    connection: Connection, base: Descriptor, timeout: float, declared: tuple[SubscriptionSpec, ...] = ()
) -> Described:
    """Ask the plugin to describe itself; a plugin without `plughost.v1` speaks Jank's `Execute`.
    `declared`: the bus handlers its manifest declares, added to those it describes."""
    try:
        response = await connection.v1.Describe(v1.DescribeRequest(), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise DescribeError(f"Describe failed: {rpc_text(exc)}") from None
        jank = replace(base, capabilities=frozenset({"execute"}), metadata={"protocol": "jank"}, subscriptions=declared)
        return Described("jank", jank)
    try:
        data = json.loads(response.descriptor_json or b"{}")
    except ValueError as exc:
        raise DescribeError(f"Describe returned invalid JSON: {exc}") from None
    try:
        described = Descriptor.from_json(data, id=base.id)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DescribeError(f"Describe returned an invalid descriptor: {type(exc).__name__}: {exc}") from None
    described = replace(described, priority=base.priority, subscriptions=described.subscriptions + declared)
    return Described("plughost.v1", described, response.invoke_lane)


def declared_subscriptions(manifest: PluginManifest) -> tuple[SubscriptionSpec, ...]:
    """The bus handlers an executable plugin's manifest declares (`[[subscriptions]]`)."""
    return tuple(SubscriptionSpec(topic=s.topic, handler=s.handler, mode=s.mode) for s in manifest.subscriptions)


def start_rpc(
    connection: Connection, protocol: str, plugin_id: str, call: Call, deadline: float
) -> tuple[Any, Callable[[Any], Outcome]]:
    """The call's RPC, started (`Invoke` or `Execute`, `deadline` in seconds), and what turns its
    response into the outcome."""
    if protocol != "plughost.v1":
        request = jank_pb2.ExecuteRequest(method=call.handler, args=as_args(call.payload, plugin_id, call.handler))
        return connection.jank.Execute(request, timeout=deadline), partial(jank_outcome, plugin_id, call.handler)
    message = v1.InvokeRequest(name=call.handler, request_json=encoded(call.payload), kind=call.kind)
    return connection.v1.Invoke(message, timeout=deadline), partial(v1_outcome, plugin_id)


def v1_outcome(plugin_id: str, response: Any) -> Outcome:
    """The outcome of a plughost.v1 `InvokeResponse`."""
    try:
        sends = actions_from_json(json.loads(response.sends_json)) if response.sends_json else ()
        value = json.loads(response.result_json) if response.result_json else None
    except (TypeError, ValueError, KeyError, RecursionError) as exc:
        return Outcome.failed("protocol_error", f"plugin '{plugin_id}' sent a malformed result: {exc}")
    if response.HasField("error"):
        error = response.error
        fields = {"code": error.code, "message": error.message, "type": error.type, "retryable": error.retryable}
        return Outcome(None, sends, PluginError.from_json(fields))
    return Outcome(value, sends)


def jank_outcome(plugin_id: str, handler: str, response: Any) -> Outcome:
    """The outcome of Jank's `ExecuteResponse` (a map of `Any(Value)`)."""
    try:
        return Outcome(unpack_map(response.data, where=f"plugin '{plugin_id}' {handler}() result"))
    except NotAValueError as exc:
        return Outcome.failed("protocol_error", str(exc))


def encoded(payload: Any) -> bytes:
    """A call's payload as JSON (a payload many calls share is encoded once)."""
    return payload.encoded(json_bytes) if isinstance(payload, SharedPayload) else json_bytes(payload)


def as_args(request: Any, plugin_id: str, name: str) -> dict[str, Any]:
    """Execute's `args`: an object of JSON-compatible values, packed as `Any(Value)`."""
    if request is None:
        return {}
    if hasattr(request, "model_dump"):
        request = request.model_dump(mode="json")
    if not isinstance(request, Mapping):
        raise InvocationError(
            f"plugin '{plugin_id}' takes Execute(method, args) with an object of arguments; "
            f"'{name}' got {type(request).__name__}",
            code="invalid_request",
        )
    try:
        return pack_map(request)
    except TypeError as exc:
        raise InvocationError(f"arguments of '{name}' are not JSON-compatible: {exc}", code="invalid_request") from None


def host_failure(exc: InvocationError) -> Outcome:
    """The outcome of a call that failed on the host's side of the link (deadline, crash, protocol)."""
    return Outcome(None, (), PluginError(exc.code, str(exc), retryable=exc.retryable))


def rpc_text(exc: BaseException) -> str:
    """`CODE: details` of a gRPC error; the text of any other."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__


__all__ = [
    "DescribeError",
    "Described",
    "as_args",
    "describe",
    "encoded",
    "host_failure",
    "jank_outcome",
    "rpc_text",
    "start_rpc",
    "v1_outcome",
]
