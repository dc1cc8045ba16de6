"""`plughost new <id> --lang c|rust|go`: a native plugin (the CLIProxyAPI ABI with plughost's bot
methods) with a chat command and a method, or a Go executable (go-plugin with Jank's service) with
a method; each with its build file and a test that builds it, loads it into a host and calls it.
The sources are real files under `templates/` with `@NAME@` placeholders."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from plughost.runtime.builds import build_argv

HEADER = "plughost_plugin.h"
QUIET = {"make": "-s", "cargo": "--quiet"}
"""The flag that quiets a native plugin's build in its generated test (a Go plugin is built by the host)."""
IGNORED = {"c": "*.so\n", "rust": "target/\nCargo.lock\n", "go": "bin/\n"}
TEST_TEMPLATE = "test.py.template"


def write_native_plugin(target: Path, language: str, plugin_id: str, command: str, test_name: str) -> None:
    """Fill the new directory `target` with the `language` templates, the test and (C) the SDK header."""
    templates = resources.files("plughost.cli").joinpath("templates")
    dashed = plugin_id.replace(".", "-")
    values = {
        "@ID@": plugin_id,
        "@ID_DASHED@": dashed,
        "@CRATE@": dashed.replace("-", "_"),
        "@COMMAND@": command,
    }
    own = templates.joinpath(language)
    _copy(own, target, values)
    build = build_argv(target)  # as the host builds it, from the build file just written
    if build is not None and build[0] in QUIET:
        values["@BUILD@"] = repr([*build, QUIET[build[0]]])
    test = own.joinpath(TEST_TEMPLATE) if own.joinpath(TEST_TEMPLATE).is_file() else templates.joinpath(TEST_TEMPLATE)
    (target / "tests" / test_name).write_text(_filled(test, values), encoding="utf-8")
    (target / ".gitignore").write_text(IGNORED[language], encoding="utf-8")
    if language == "c":
        header = resources.files("plughost.sdk").joinpath("include", HEADER)
        (target / HEADER).write_text(header.read_text(encoding="utf-8"), encoding="utf-8")


def _copy(source: Traversable, target: Path, values: dict[str, str]) -> None:
    for entry in source.iterdir():
        if entry.name == TEST_TEMPLATE:
            continue  # goes to tests/ under the plugin's test name
        if entry.is_dir():
            (target / entry.name).mkdir(exist_ok=True)
            _copy(entry, target / entry.name, values)
        else:
            (target / entry.name).write_text(_filled(entry, values), encoding="utf-8")


def _filled(template: Traversable, values: dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
