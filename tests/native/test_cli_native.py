"""`plughost plugins execute|info` on native plugins, run as real subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.native.conftest import Builds
from tests.test_cli import plughost


def test_execute_and_info_for_a_native_plugin(tmp_path: Path, c_builds: Builds) -> None:
    (tmp_path / "plugins").mkdir()
    shutil.copyfile(c_builds["example_c"], tmp_path / "plugins" / "example-c-v1.2.0.so")
    shutil.copyfile(c_builds["bad_meta"], tmp_path / "plugins" / "half.so")
    ws = str(tmp_path)
    result = plughost("exec", "/echo hi there", "-w", ws)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello, hi there"
    failed = plughost("plugins", "execute", "example-c", "nope", "--args", "{}", "-w", ws)
    assert failed.returncode == 1 and "unknown method nope" in failed.stdout + failed.stderr
    info = json.loads(plughost("plugins", "info", "example-c", "--json", "-w", ws).stdout)
    assert info["runtime"] == "native" and info["version"] == "1.2.0"
    assert info["descriptor"]["capabilities"] == ["bot", "management_api"]
    assert info["descriptor"]["metadata"]["plugin"]["Author"] == "plughost"
    half = json.loads(plughost("plugins", "info", "half", "--json", "-w", ws).stdout)
    assert half["descriptor"]["metadata"]["inactive_reason"] == "metadata Author is blank"
    table = plughost("plugins", "info", "half", "-w", ws)
    assert table.returncode == 0 and "inactive: metadata Author is blank" in table.stdout
