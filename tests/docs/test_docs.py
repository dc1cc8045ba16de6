"""The documentation's code blocks, run the way a reader runs them (see `tests/docs/blocks.py`).

Each document gets a fresh copy of the repository's examples (the rest linked read-only: `src`,
`sdk`, `tools`, `benchmarks`, and the project's `.venv`, which is on PATH as after
`. .venv/bin/activate`) and a fresh HOME; its blocks run in order, so a later block sees what an
earlier one made.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from plughost.sdk.manifest import parse_manifest
from tests.conftest import require_tool
from tests.docs.blocks import Block, blocks_of, documents

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LINKED = ("src", "sdk", "tools", "benchmarks")
BLOCK_TIMEOUT_S = 300
HOST_START_TIMEOUT_S = 60
DEFAULT_ADDRESS = "127.0.0.1:3210"  # in a `host` block: the address the host got
DOCS = documents(ROOT)


NOT_COPIED = {".plughost", "data", "target", "__pycache__", "node_modules"}


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_COPIED or n.endswith(".so")}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A reader's checkout: examples copied, the rest linked."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "examples", repo / "examples", ignore=_copy_ignore, symlinks=True)
    for name in LINKED:
        (repo / name).symlink_to(ROOT / name)
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    for name in ("README.md", "pyproject.toml"):
        shutil.copyfile(ROOT / name, repo / name)
    (tmp_path / "home").mkdir()
    return repo


def _environment(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGHOST_", "PYTEST", "VIRTUAL_ENV"))}
    env["PATH"] = f"{repo / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(repo / ".venv")
    for variable, directory in (("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")):  # a reader's own toolchain
        if variable not in env and (Path.home() / directory).is_dir():
            env[variable] = str(Path.home() / directory)
    env["HOME"] = str(repo.parent / "home")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reader:
    """Runs one document's blocks in order in `repo`."""

    def __init__(self, repo: Path, doc: Path) -> None:
        self.repo = repo
        self.env = _environment(repo)
        in_examples = doc.parts[0] == "examples"
        self.default_cwd = repo / doc.parent if in_examples else repo

    def cwd(self, block: Block) -> Path:
        where = block.directives.get("cwd")
        if where is None:
            return self.default_cwd
        if where.startswith("~"):  # the reader's home (a fresh one per document)
            directory = Path(self.env["HOME"]) / where.removeprefix("~").lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            return directory
        return self.repo / where

    def shell_text(self, text: str, cwd: Path, timeout: float = BLOCK_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-eo", "pipefail", "-c", text],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run(self, block: Block) -> None:
        directives = block.directives
        cwd = self.cwd(block)
        if "file" in directives:
            target = cwd / directives["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
        if block.lang in ("sh", "console"):
            self.run_shell(block, cwd)
        elif block.lang == "toml":
            self.check_toml(block, cwd)
        elif block.lang == "json":
            check_json(block)
        elif block.lang == "python":
            self.run_python(block, cwd)

    def run_shell(self, block: Block, cwd: Path) -> None:
        with self.host(block, cwd) as host:
            text = block.commands()
            if host.address:  # the docs' default address stands for the port the host got
                text = text.replace(DEFAULT_ADDRESS, host.address)
            done = self.shell_text(text, cwd)
        output = f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        if "fails" in block.directives:
            assert done.returncode != 0, f"{block.where}: the block should fail, but it succeeded\n{output}"
        else:
            assert done.returncode == 0, f"{block.where}: the block failed\n{output}"

    def host(self, block: Block, cwd: Path) -> _Host:
        return _Host(self, block.directives.get("host"), cwd)

    def check_toml(self, block: Block, cwd: Path) -> None:
        data = tomllib.loads(block.code)
        if "manifest" in block.directives:
            parse_manifest(data, block.where)
        if "config" in block.directives:
            workspace = self.repo.parent / f"config-{block.line}"
            workspace.mkdir()
            (workspace / "plughost.toml").write_text(block.code, encoding="utf-8")
            check_host_config(workspace)

    def run_python(self, block: Block, cwd: Path) -> None:
        directives = block.directives
        if "plugin" in directives:
            plugin_id = directives["plugin"]
            if "cwd" not in directives:  # a workspace of the reader's, outside the checkout
                cwd = Path(self.env["HOME"]) / "workspace"
            directory = cwd / "plugins" / plugin_id
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "plugin.py").write_text(block.code, encoding="utf-8")
            manifest = directory / "plugin.toml"
            if not manifest.exists():
                manifest.write_text(f'id = "{plugin_id}"\nversion = "0.1.0"\n', encoding="utf-8")
            done = self.shell_text(f"plughost plugins info {plugin_id} --local --json -w .", cwd)
            assert done.returncode == 0, f"{block.where}: plugin '{plugin_id}' does not load:\n{done.stderr}"
            info = json.loads(done.stdout)
            assert not info.get("error"), f"{block.where}: plugin '{plugin_id}' failed: {info.get('error')}"
        elif "run" in directives:
            done = subprocess.run(
                [str(self.repo / ".venv" / "bin" / "python"), "-c", block.code],
                cwd=cwd, env=self.env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False,
            )  # fmt: skip
            output = done.stdout[-2000:] + done.stderr[-3000:]
            assert done.returncode == 0, f"{block.where}: the script failed:\n{output}"
        elif "file" in directives and directives["file"].endswith(".py"):
            compile(block.code, block.where, "exec")


class _Host:
    """`plughost run --no-console ARGS` for the duration of a block (when the block asks for one)."""

    def __init__(self, reader: Reader, args: str | None, cwd: Path) -> None:
        self.reader, self.args, self.cwd = reader, args, cwd
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def __enter__(self) -> _Host:
        if self.args is None:
            return self
        self.address = address = f"127.0.0.1:{_free_port()}"
        command = f"exec plughost run --no-console --manage-bind {address} {self.args}"
        self.process = process = subprocess.Popen(
            ["bash", "-c", command], cwd=self.cwd, env=self.reader.env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
        seen: list[str] = []
        while True:  # the host is ready when it announces its management API
            try:
                line = lines.get(timeout=HOST_START_TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"the host did not start in time:\n{''.join(seen)}") from None
            if line is None:
                raise AssertionError(f"the host exited before it was ready:\n{''.join(seen)}")
            seen.append(line)
            if f"http://{address}" in line:
                return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def check_json(block: Block) -> None:
    """One JSON document, or one per line (examples of several answers)."""
    try:
        json.loads(block.code)
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise AssertionError(f"{block.where}: not JSON: {exc}") from None
        for number, line in enumerate(block.code.splitlines(), start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as bad:
                    raise AssertionError(f"{block.where}, line {number}: not JSON: {bad}") from None


def check_host_config(workspace: Path) -> None:
    """Validate a workspace's `plughost.toml` the way each of its surfaces does when it starts."""
    from plughost.agent.settings import AgentSettings
    from plughost.bot.config import BotSettings
    from plughost.cluster.settings import ClusterSettings
    from plughost.core.config import HostConfig
    from plughost.manage.settings import ManageSettings
    from plughost.market.settings import MarketSettings

    config = HostConfig.load(workspace)
    for settings in (AgentSettings, BotSettings, ClusterSettings, ManageSettings, MarketSettings):
        settings.from_host_config(config)


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def test_every_block_is_labelled_and_marked() -> None:
    problems = [f"{b.where}: {p}" for doc in DOCS for b in blocks_of(doc, ROOT) for p in b.problems]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_document_runs_as_written(doc: Path, checkout: Path) -> None:
    reader = Reader(checkout, doc.relative_to(ROOT))
    before = {p.name for p in checkout.iterdir()}
    missing: list[str] = []
    for block in blocks_of(doc, ROOT):
        if block.problems or "skip" in block.directives or block.lang == "text":
            continue
        absent = [tool for tool in block.directives.get("needs", "").split(",") if tool and not shutil.which(tool)]
        if absent:
            missing.append(f"{block.where} needs {', '.join(absent)}")
            continue
        reader.run(block)
    left = sorted({p.name for p in checkout.iterdir()} - before)
    assert not left, f"{doc.name} leaves {left} in the reader's checkout: point it at a workspace outside it"
    if missing:  # the rest ran; say what did not
        require_tool(missing[0].rsplit(" ", 1)[-1], "; ".join(missing))
