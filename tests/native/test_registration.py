"""config_yaml and registration parsing rules (pure functions; the loader tests cover the wire)."""

from __future__ import annotations

import pytest

from plughost.runtime.native.envelope import NativeCallError, decode_reply
from plughost.runtime.native.registration import RegistrationError, config_yaml, parse_registration

META = {"Name": "n", "Version": "1", "Author": "a", "GitHubRepository": "r"}


def test_default_config_yaml_matches_cliproxyapi() -> None:
    assert config_yaml({}, enabled=False, priority=0) == "enabled: false\npriority: 0\n"


def test_config_values_win_over_appended_keys() -> None:
    text = config_yaml({"priority": 5, "nested": {"k": [1, 2]}, "enabled": True}, enabled=False, priority=0)
    assert text == "priority: 5\nnested:\n  k:\n  - 1\n  - 2\nenabled: true\n"


def test_schema_version_rules() -> None:
    assert parse_registration({"metadata": META, "capabilities": {"executor": True}}).schema_version == 1
    assert parse_registration({"schema_version": 0, "metadata": META, "capabilities": {"scheduler": True}}).active
    with pytest.raises(RegistrationError, match="schema version 4 is not supported"):
        parse_registration({"schema_version": 4})
    with pytest.raises(RegistrationError, match="not a number"):
        parse_registration({"schema_version": "three"})


def test_inactive_reasons_list_every_problem() -> None:
    reg = parse_registration({"metadata": {"Name": "n"}, "capabilities": {"executor": False, "unknown_cap": True}})
    assert reg.inactive_reason == (
        "metadata Version is blank; metadata Author is blank; metadata GitHubRepository is blank; "
        "no capability is enabled"
    )
    assert parse_registration(None).inactive_reason is not None


def test_exclusive_frontend_auth_needs_frontend_auth() -> None:
    alone = parse_registration({"metadata": META, "capabilities": {"frontend_auth_provider_exclusive": True}})
    assert alone.capabilities == frozenset() and not alone.active
    both = parse_registration(
        {"metadata": META, "capabilities": {"frontend_auth_provider": True, "frontend_auth_provider_exclusive": True}}
    )
    assert both.capabilities == {"frontend_auth_provider", "frontend_auth_provider_exclusive"}


def test_envelope_keys_are_case_insensitive_and_unknown_keys_ignored() -> None:
    assert decode_reply("p", "m", 0, b'{"OK":true,"RESULT":{"a":1},"extra":2}') == {"a": 1}
    assert decode_reply("p", "m", 0, b'{"ok":true}') is None
    with pytest.raises(NativeCallError, match="m: boom: bad") as info:
        decode_reply("p", "m", 0, b'{"Ok":false,"Error":{"Code":"boom","Message":"bad","Retryable":true}}')
    assert info.value.code == "boom" and info.value.retryable
    with pytest.raises(NativeCallError, match="failed without an error object"):
        decode_reply("p", "m", 0, b'{"ok":false}')
