"""`plughost new <id> --lang c|rust|go`: a native plugin that builds warning-free with the command printed
for it, loads, answers its command and method, and whose generated test passes as printed; a Go
executable the host builds itself on load."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from plughost.sdk.golang import GO_CLIENT, GO_CLIENT_ENV
from tests.conftest import require_tool
from tests.test_cli import cli_env, plughost


@dataclass(frozen=True)
class Language:
    name: str
    tools: tuple[str, ...]
    files: tuple[str, ...]
    build_hint: str  # what is printed, {dir} the plugin's directory
    strict_build: tuple[str, ...]  # the build, warnings as errors, run in the plugin's directory
    env: tuple[tuple[str, str], ...] = ()


LANGUAGES = {
    "c": Language(
        "c", ("make", "gcc"), ("plugin.c", "Makefile", "plughost_plugin.h"), "make -C {dir}",
        ("make", "CFLAGS=-std=gnu11 -O2 -Wall -Wextra -Werror"),
    ),
    "rust": Language(
        "rust", ("cargo", "rustc"), ("Cargo.toml", "src/lib.rs"),
        "cargo build --release --offline --manifest-path {dir}/Cargo.toml",
        ("cargo", "build", "--release", "--offline"), (("RUSTFLAGS", "-D warnings"),),
    ),
}  # fmt: skip


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_a_native_plugin_is_scaffolded_built_and_answers(tmp_path: Path, language: str) -> None:
    lang = LANGUAGES[language]
    for tool in lang.tools:
        require_tool(tool, f"the scaffolded {language} plugin is built with it")
    ws = str(tmp_path)
    created = plughost("new", "greet-x", "--lang", language, "-w", ws)
    assert created.returncode == 0, created.stderr
    directory = tmp_path / "plugins" / "greet-x"
    lines = created.stdout.splitlines()
    hint = lang.build_hint.format(dir=directory)
    assert lines[1] == f"build it with: {hint}"
    for name in ("plugin.toml", ".gitignore", "tests/test_greet_x.py", *lang.files):
        assert (directory / name).is_file(), name

    unbuilt = plughost("plugins", "info", "greet-x", "-w", ws)  # not built yet: says how to build it
    assert "does not exist (not built yet? run: " in unbuilt.stdout and str(directory) in unbuilt.stdout

    built = subprocess.run(
        lang.strict_build, cwd=directory, env={**os.environ, **dict(lang.env)},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr  # warning-free
    assert plughost("exec", "/greet-x Ada", "-w", ws).stdout == "hello, Ada\n"
    assert plughost("exec", "/greet-x", "-w", ws).stdout == "hello, world\n"
    quoted = plughost("exec", '/greet-x A"da', "-w", ws)  # a quote in the argument keeps the JSON whole
    assert (quoted.returncode, quoted.stdout) == (0, 'hello, A"da\n'), quoted.stderr
    long = "é" * 600  # longer than any fixed buffer: nothing cut, no character split
    assert plughost("exec", f"/greet-x {long}", "-w", ws).stdout == f"hello, {long}\n"
    method = plughost("plugins", "execute", "greet-x", "hello", "--args", '{"name": "Bob"}', "--json", "-w", ws)
    assert method.returncode == 0, method.stderr
    assert json.loads(method.stdout)["result"] == {"greeting": "hello, Bob"}
    unknown = plughost("plugins", "execute", "greet-x", "nope", "--args", "{}", "-w", ws)
    assert unknown.returncode == 1 and "unknown method nope" in unknown.stdout + unknown.stderr

    test = shlex.split(lines[-1].removeprefix("run its test with: "))
    ran = subprocess.run(test, capture_output=True, text=True, cwd=tmp_path, env=cli_env(), timeout=600, check=False)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr


def test_a_go_plugin_is_scaffolded_built_by_the_host_and_answers(tmp_path: Path) -> None:
    """The scaffold uses the host's shared state through plughost's Go client, which the package
    carries: nothing of a checkout is on the way (no PLUGHOST_GO_SDK in the environment)."""
    require_tool("go", "the scaffolded Go plugin is built with it")
    if not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        message = "golang-github-hashicorp-go-plugin-dev is not installed (apt-get install it)"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)
    env = {k: v for k, v in cli_env().items() if k != GO_CLIENT_ENV}
    ws = str(tmp_path)
    created = plughost("new", "greet-go", "--lang", "go", "-w", ws, env=env)
    assert created.returncode == 0, created.stderr
    directory = tmp_path / "plugins" / "greet-go"
    lines = created.stdout.splitlines()
    script = directory / "scripts" / "build.sh"
    build = f"{GO_CLIENT_ENV}={GO_CLIENT} sh {script}"
    assert lines[1] == f"build it with: {build} (the host also runs it when it loads the plugin)"
    for name in ("plugin.toml", "main.go", "jank.pb.go", "proto/jank.proto", "tests/test_greet_go.py"):
        assert (directory / name).is_file(), name
    assert subprocess.run(["gofmt", "-l", str(directory)], capture_output=True, text=True, check=True).stdout == ""

    assert not (directory / "bin").exists()  # nothing built yet: the host builds it when it loads it
    method = plughost(
        "plugins", "execute", "greet-go", "hello", "--args", '{"name": "Ada"}', "--json", "-w", ws, env=env
    )
    assert method.returncode == 0, method.stderr
    assert json.loads(method.stdout)["result"] == {"greeting": "hello, Ada", "greeted": 1}
    assert (directory / "bin" / "greet-go").is_file()
    unknown = plughost("plugins", "execute", "greet-go", "nope", "--args", "{}", "-w", ws, env=env)
    assert unknown.returncode == 1 and "unknown method" in unknown.stdout + unknown.stderr

    test = shlex.split(lines[-1].removeprefix("run its test with: "))
    ran = subprocess.run(test, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600, check=False)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr

    # by hand: without the client's path the script says how to name it; as printed, it builds
    shutil.rmtree(directory / "bin")
    bare = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert bare.returncode == 2 and "python -m plughost.sdk.golang" in bare.stderr and not (directory / "bin").exists()
    named = subprocess.run(
        [sys.executable, "-m", "plughost.sdk.golang"], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert named == str(GO_CLIENT) and (GO_CLIENT / "src" / "plughost" / "hostapi" / "hostapi.go").is_file()
    by_hand = subprocess.run(build, shell=True, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert by_hand.returncode == 0 and (directory / "bin" / "greet-go").is_file(), by_hand.stderr

    # a change that does not compile: the call fails saying why, with the build's output
    shutil.rmtree(directory / "bin")
    source = directory / "main.go"
    source.write_text(source.read_text().replace('"hello, " + name', '"hello, " + nam'))
    broken = plughost("plugins", "execute", "greet-go", "hello", "-w", ws, env=env)
    assert broken.returncode == 1
    assert "error: plugin 'greet-go' failed: build failed:" in broken.stderr and "undefined: nam" in broken.stderr


def test_new_refuses_an_unknown_language_and_an_existing_plugin(tmp_path: Path) -> None:
    ws = str(tmp_path)
    unknown = plughost("new", "x", "--lang", "cobol", "-w", ws)
    assert unknown.returncode == 2 and "error: --lang: 'cobol' is not one of python, c, rust, go" in unknown.stderr
    assert not (tmp_path / "plugins" / "x").exists()  # nothing half-written
    assert plughost("new", "x", "--lang", "c", "-w", ws).returncode == 0
    source = (tmp_path / "plugins" / "x" / "plugin.c").read_text()
    again = plughost("new", "x", "--lang", "c", "-w", ws)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert (tmp_path / "plugins" / "x" / "plugin.c").read_text() == source  # left as it was


def test_the_wheel_carries_the_templates_header_and_go_client_the_scaffolds_use(tmp_path: Path) -> None:
    """A `pip install`ed plughost has no checkout: `new --lang c|rust|go` takes its files from the
    package, and a Go plugin's build finds plughost's Go client there."""
    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "project"  # a clean copy: an in-tree build would reuse a stale build/ directory
    shutil.copytree(root / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(root / name, project / name)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]  # offline if it can
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", str(project), "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("plughost-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        header = archive.read("plughost/sdk/include/plughost_plugin.h")
        names = set(archive.namelist())
    templates = root / "src" / "plughost" / "cli" / "templates"
    for path in (p for p in templates.rglob("*") if p.is_file()):
        assert f"plughost/cli/templates/{path.relative_to(templates).as_posix()}" in names
    assert header == (root / "sdk" / "c" / "plughost_plugin.h").read_bytes()  # the one the examples build with
    go_client = root / "sdk" / "go"  # plughost/hostapi, which Go plugins build with
    for path in (p for p in go_client.rglob("*") if p.is_file()):
        assert f"plughost/sdk/go/{path.relative_to(go_client).as_posix()}" in names
