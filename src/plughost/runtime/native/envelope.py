"""The JSON envelope both directions speak, with case-insensitive result keys.

`{"ok":true,"result":<json>}` or `{"ok":false,"error":{"code","message","retryable"?,"http_status"?}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plughost.errors import InvocationError

PREVIEW_BYTES = 200


class NativeCallError(InvocationError):
    """A native plugin call failed: an error envelope, a bad reply, or a non-zero return code."""

    def __init__(
        self, message: str, *, code: str = "plugin_error", retryable: bool = False, http_status: int | None = None
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.http_status = http_status


def get_ci(data: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`data[key]` matched case-insensitively (Go's encoding/json rule); exact match first."""
    if key in data:
        return data[key]
    lowered = key.lower()
    for name, value in data.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return default


def get_ci_any(data: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of `keys` present (case-insensitively)."""
    missing = object()
    for key in keys:
        value = get_ci(data, key, missing)
        if value is not missing:
            return value
    return default


def encode_ok(result: Any) -> bytes:
    return json.dumps({"ok": True, "result": result}, separators=(",", ":")).encode()


def encode_error(code: str, message: str) -> bytes:
    return json.dumps({"ok": False, "error": {"code": code, "message": message}}, separators=(",", ":")).encode()


def preview(data: bytes) -> str:
    """A short, printable view of reply bytes for error messages (invalid UTF-8 shown escaped)."""
    if not data:
        return "(no reply)"
    text = data[:PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
    return text + (f"… ({len(data)} bytes)" if len(data) > PREVIEW_BYTES else "")


def _parse(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"reply is not valid UTF-8 at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc


def _error_from(envelope: Mapping[str, Any], where: str) -> NativeCallError:
    error = get_ci(envelope, "error")
    if not isinstance(error, Mapping):
        return NativeCallError(f"{where} failed without an error object")
    message = str(get_ci(error, "message") or "").strip() or "plugin call failed"
    code = str(get_ci(error, "code") or "plugin_error")
    status = get_ci_any(error, "http_status", "httpstatus")
    return NativeCallError(
        f"{where}: {code}: {message}",
        code=code,
        retryable=bool(get_ci(error, "retryable", False)),
        http_status=status if isinstance(status, int) and status > 0 else None,
    )


def decode_reply(plugin_id: str, method: str, rc: int, data: bytes) -> Any:
    """Turn a plugin's return code and reply bytes into its result, or raise `NativeCallError`.

    rc ≠ 0 with a valid error envelope is a normal error; rc ≠ 0 otherwise is reported as
    "plugin call <m> returned <rc>: <bytes>".
    """
    where = f"plugin '{plugin_id}' call {method}"
    try:
        envelope = _parse(data)
    except ValueError as exc:
        if rc != 0:
            raise NativeCallError(f"plugin call {method} returned {rc}: {preview(data)}") from None
        raise NativeCallError(
            f"{where} returned an invalid JSON envelope ({exc}): {preview(data)}", code="invalid_reply"
        ) from None
    if not isinstance(envelope, Mapping):
        if rc != 0:
            raise NativeCallError(f"plugin call {method} returned {rc}: {preview(data)}")
        raise NativeCallError(
            f"{where} returned JSON that is not an envelope object: {preview(data)}", code="invalid_reply"
        )
    ok = get_ci(envelope, "ok")
    if rc != 0:
        if ok is not True and isinstance(get_ci(envelope, "error"), Mapping):
            raise _error_from(envelope, where)
        raise NativeCallError(f"plugin call {method} returned {rc}: {preview(data)}")
    if ok is not True:
        raise _error_from(envelope, where)
    return get_ci(envelope, "result")
