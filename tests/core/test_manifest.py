"""Manifests: both file formats, LurkBot/Jank spellings, and precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plughost.errors import ManifestError
from plughost.sdk.manifest import load_manifest


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_manifest_with_every_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plugin.toml",
        """
        id = "weather.tool"
        version = "1.2.3-beta.1+build.5"
        description = "Weather"
        author = { name = "Ada", email = "ada@example.org" }
        type = "tool"
        entry = "plugin.py"
        priority = 700
        isolation = "process"
        tags = ["weather"]
        [permissions]
        network = false
        channels = ["group:1"]
        [limits]
        timeout_s = 2.5
        memory_mb = 256
        [dependencies]
        plugins = ["geo>=1.0"]
        """.replace("\n        ", "\n"),
    )
    manifest = load_manifest(path)
    assert manifest.id == "weather.tool"
    assert manifest.name == "weather.tool"
    assert manifest.author is not None and manifest.author.email == "ada@example.org"
    assert manifest.permissions.network is False and manifest.permissions.channels == ["group:1"]
    assert manifest.limits.timeout_s == 2.5
    assert manifest.dependencies.plugins == ["geo>=1.0"]
    assert manifest.priority == 700


def test_sandbox_isolation_denies_what_the_manifest_does_not_grant() -> None:
    from plughost.sdk.manifest import PluginManifest

    def permissions(**data: object) -> tuple[bool, bool, bool]:
        granted = PluginManifest.model_validate({"id": "p", **data}).permissions
        return granted.filesystem, granted.network, granted.exec

    assert permissions(isolation="sandbox") == (False, False, False)
    assert permissions(isolation="sandbox", permissions={"network": True}) == (False, True, False)
    assert permissions(isolation="sandbox", permissions={"filesystem": True, "exec": False}) == (True, False, False)
    assert permissions(isolation="process") == (True, True, True)  # process and none: allowed unless denied
    assert permissions(isolation="process", permissions={"exec": False}) == (True, True, False)
    assert permissions() == (True, True, True)
    sandboxed = PluginManifest.model_validate({"id": "p", "isolation": "sandbox", "permissions": {"network": True}})
    again = PluginManifest.model_validate_json(sandboxed.model_dump_json())  # what a worker receives
    assert again.permissions == sandboxed.permissions


def test_jank_plugin_json_spelling(tmp_path: Path) -> None:
    data = {
        "id": "com.example.echo",
        "name": "Echo",
        "version": "0.3.0",
        "author": "Jank Team",
        "binary": "bin/echo",
        "type": "handler",
        "auto_start": True,
        "start_timeout": 5000,
        "min_port": 10000,
        "max_port": 11000,
        "auto_mtls": False,
        "repository": "https://example.org/echo",
    }
    manifest = load_manifest(write(tmp_path, "plugin.json", json.dumps(data)))
    assert manifest.id == "com.example.echo" and manifest.name == "Echo"
    assert manifest.runtime == "process" and manifest.entry == "bin/echo"
    assert manifest.author is not None and manifest.author.name == "Jank Team"
    assert manifest.handshake is not None and manifest.handshake.magic_cookie_key == "JANK_PLUGIN"


def test_lurkbot_spelling_entry_point_and_main_class(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plugin.json",
        json.dumps({"name": "legacy", "version": "1.0.0", "entry_point": "main.py", "main_class": "LegacyPlugin"}),
    )
    manifest = load_manifest(path)
    assert manifest.id == "legacy"
    assert manifest.entry == "main.py:LegacyPlugin"


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.toml", 'id = "x"\nversion = "1.0.0"\nenabeld = true\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert "enabeld" in str(info.value) and str(path) in str(info.value)
    assert info.value.issues[0].field == "enabeld"


def test_nested_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.toml", 'id = "x"\n[limits]\ntimeout = 3\n')
    with pytest.raises(ManifestError, match=r"limits\.timeout"):
        load_manifest(path)


@pytest.mark.parametrize("bad_id", ["", "-x", ".hidden", "a b", "x" * 129, "名字", "a/b"])
def test_bad_ids_are_rejected(tmp_path: Path, bad_id: str) -> None:
    path = write(tmp_path, "plugin.json", json.dumps({"id": bad_id, "version": "1.0.0"}))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.issues[0].field == "id"


@pytest.mark.parametrize("good_id", ["a", "A1", "x" * 128, "com.example.echo", "my_plugin-2"])
def test_good_ids(tmp_path: Path, good_id: str) -> None:
    path = write(tmp_path, "plugin.json", json.dumps({"id": good_id, "version": "1.0.0"}))
    assert load_manifest(path).id == good_id


@pytest.mark.parametrize("version", ["1", "1.0", "01.0.0", "1.0.0.0", "v1.0.0", "latest"])
def test_non_semver_versions_are_rejected(tmp_path: Path, version: str) -> None:
    path = write(tmp_path, "plugin.json", json.dumps({"id": "x", "version": version}))
    with pytest.raises(ManifestError, match="semantic version"):
        load_manifest(path)


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.toml", 'id = "x"\nversion = \n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.json", '{\n  "id": "x",\n  "version": }\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value) and "line 3" in str(info.value)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.toml", 'id = "bad id"\nversion = "x"\npriority = 5000\ncolour = 1\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    fields = {issue.field for issue in info.value.issues}
    assert fields == {"id", "version", "priority", "colour"}


def test_two_entry_spellings_conflict(tmp_path: Path) -> None:
    path = write(tmp_path, "plugin.json", json.dumps({"id": "x", "entry": "a.py", "binary": "bin/x"}))
    with pytest.raises(ManifestError, match="only one of"):
        load_manifest(path)


def test_declared_subscriptions_are_for_executable_plugins_only(tmp_path: Path) -> None:
    subscription = '[[subscriptions]]\ntopic = "kv.put"\nhandler = "on_put"\n'
    path = write(tmp_path, "plugin.toml", f'id = "x"\nversion = "1.0.0"\n{subscription}')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert "`[[subscriptions]]` are for executable plugins" in str(info.value)
    assert "@plugin.subscribe" in str(info.value) and "bot.describe" in str(info.value)
    path.write_text(f'id = "x"\nversion = "1.0.0"\nruntime = "process"\nentry = "bin/x"\n{subscription}')
    [declared] = load_manifest(path).subscriptions
    assert (declared.topic, declared.handler, declared.mode) == ("kv.put", "on_put", "subscribe")
