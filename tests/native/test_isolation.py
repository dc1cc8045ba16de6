"""isolation = "process": the library runs in a `plughost worker`; a segfault kills only the worker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from plughost.core.manager import PluginManager
from tests.native.conftest import Builds


async def test_an_isolated_native_plugin_survives_its_own_segfault(tmp_path: Path, c_builds: Builds):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copyfile(c_builds["probe"], plugins / "probe.so")
    (plugins / "probe.plugin.toml").write_text('id = "probe"\nruntime = "native"\nisolation = "process"\n')
    shutil.copyfile(c_builds["probe"], plugins / "neighbour.so")
    async with PluginManager(tmp_path) as pm:
        assert await pm.discover_and_load_all() == 2
        probe = pm.get_plugin("probe")
        assert probe is not None and probe.state == "enabled", probe and probe.error
        assert (await pm.invoke("probe", "echo", {"a": 1})).result == {"a": 1}
        worker_pid = (await pm.invoke("probe", "pid", {})).result
        assert worker_pid != os.getpid()  # the library runs in another process
        crashed = await pm.invoke("probe", "crash", {})
        assert not crashed.success
        assert (await pm.invoke("neighbour", "echo", {"b": 2})).result == {"b": 2}  # the host lives on
        again = await pm.invoke("probe", "echo", {"c": 3})  # the worker was restarted
        assert again.success, again.error
        assert again.result == {"c": 3}
        assert (await pm.invoke("probe", "pid", {})).result != worker_pid
