"""JSON on the hot paths (OneBot frames, worker calls): the standard library's answers, faster.

`loads` and `dumps` give exactly what `json.loads` and `json.dumps(..., default=…)` give — the same
values, the same errors — but use `orjson` (3-10x faster) wherever its answer is the same, and the
standard library where it is not:

- numbers of 19 digits or more: orjson reads integers past 64 bits as floats, losing digits;
- `NaN`, `Infinity`, lone surrogates and non-UTF-8 input, which orjson refuses to read;
- non-finite floats when writing: orjson writes them as `null`, the standard library as `NaN`;
- integers past 64 bits and dictionaries with keys other than strings, which orjson refuses.

The bytes `dumps` writes are compact (UTF-8 from orjson, ASCII with escapes from the fallback);
they decode to the same value as `json.dumps`'s.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

import orjson

_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))  # translate: each digit a "0"
_LONG_RUN = b"0" * 19  # a number this long may not fit in 64 bits (a regex search costs 3x the parse)
PLAIN = frozenset({int, str, float, bool, type(None)})
"""Types that are their own JSON form."""
_FINITE_MIN, _FINITE_MAX = -sys.float_info.max, sys.float_info.max
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS  # as json: through `default`


def loads(data: str | bytes) -> Any:
    """`json.loads(data)`: the same value, or the same error."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGITS_ONLY):
        # what orjson refuses (NaN, a lone surrogate) the standard library decides
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(data)
    return json.loads(data)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """The JSON of `value` as bytes; `TypeError`/`ValueError` as `json.dumps(value, default=default)`
    raises them."""
    with contextlib.suppress(TypeError):  # orjson.JSONEncodeError: maybe only orjson refuses it (a big int)
        encoded = orjson.dumps(value, default=default, option=_PASSTHROUGH)
        # a non-finite float would be `null` here, `NaN` in json's answer
        if b"null" not in encoded or _plain_and_finite(value):
            return encoded
    return json.dumps(value, default=default, separators=(",", ":")).encode()


def _plain_and_finite(value: Any) -> bool:
    """True when `value` is made of dicts, lists and scalars only, and no float in it is NaN or
    infinite: then orjson's `null`s are all None's, as in json's answer."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is float:
            if not _FINITE_MIN <= item <= _FINITE_MAX:  # NaN compares false too
                return False
        elif kind in PLAIN:
            continue
        elif _plain_mapping(kind):
            pending.extend(dict.values(item))
        else:
            return False  # another subclass, or what `default` turns into JSON: decided by json
    return True


def _plain_mapping(kind: type) -> bool:
    """True for a dict subclass whose items are its dict's (an event's or a command's payload):
    orjson and json both write it as that dict. One that overrides how it is read is json's."""
    return issubclass(kind, dict) and all(
        getattr(kind, name) is getattr(dict, name) for name in ("items", "keys", "__iter__", "__getitem__")
    )


__all__ = ["PLAIN", "dumps", "loads"]
