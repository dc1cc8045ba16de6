#!/usr/bin/env python3
"""Set up a local virtual environment and run plughost or its test suite.

    python3 tools/dev.py run     # set up .venv, run the host on the bundled examples
    python3 tools/dev.py test    # set up .venv, run the whole test suite (extra args go to pytest)
    python3 tools/dev.py bench   # set up .venv, run the benchmarks
    python3 tools/dev.py screenshots  # set up .venv, retake docs/console/*.png in Chromium

Needs only python3 (>= 3.11). When the interpreter lacks `ensurepip` (Debian without
python3-venv), pip is fetched from PyPI into the new environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("PLUGHOST_VENV", ROOT / ".venv"))
BIN = VENV / "bin"
STAMP = VENV / ".plughost-installed"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs under whatever python3 is installed
        print(f"plughost needs Python >= 3.11; this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    if not argv or argv[0] not in {"run", "test", "bench", "setup", "screenshots"}:
        print(__doc__, file=sys.stderr)
        return 2
    setup()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "run":
        args = [str(BIN / "plughost"), "run", "--workspace", str(ROOT / "examples"), *rest]
    elif command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    elif command == "screenshots":
        os.environ["PLUGHOST_SCREENSHOTS"] = str(ROOT / "docs" / "console")
        args = [str(BIN / "python"), "-m", "pytest", "-q", "tests/console/test_screenshots.py", *rest]
    else:
        args = [str(BIN / "python"), str(ROOT / "benchmarks" / "run.py"), *rest]
    os.chdir(ROOT)
    os.execv(args[0], args)
    return 0  # pragma: no cover


def setup() -> None:
    """Create .venv and install plughost with its dev extras (again only when pyproject changed)."""
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except (subprocess.CalledProcessError, OSError):
            venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
            _bootstrap_pip()
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("installing plughost and its development dependencies", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def _bootstrap_pip() -> None:
    """Install pip into a venv created without it, from the pip wheel on PyPI."""
    index = "https://pypi.org/pypi/pip/json"
    with urllib.request.urlopen(index, timeout=60) as response:
        release = json.load(response)
    wheel = next(u for u in release["urls"] if u["filename"].endswith(".whl"))
    target = VENV / wheel["filename"]
    urllib.request.urlretrieve(urllib.parse.urljoin(index, wheel["url"]), target)
    if hashlib.sha256(target.read_bytes()).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"downloaded {target.name} does not match its published SHA-256")
    subprocess.run([str(BIN / "python"), f"{target}/pip", "install", "-q", str(target)], check=True)
    target.unlink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
