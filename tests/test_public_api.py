"""The public names: `plughost.sdk` is the author's surface, `plughost` adds the host API."""

from __future__ import annotations

import subprocess
import sys

import plughost
import plughost.sdk

HOST_API = {"Guard", "Host", "HostConfig", "PlugHostError", "PluginManager", "default_runtimes"}


def test_plughost_offers_the_host_api_and_every_sdk_name() -> None:
    assert set(plughost.__all__) == HOST_API | set(plughost.sdk.__all__)
    for name in plughost.__all__:
        assert getattr(plughost, name) is not None, name
    assert plughost.Plugin is plughost.sdk.Plugin


def test_what_authors_use_comes_from_the_sdk() -> None:
    for name in (
        "Plugin", "PluginContext", "CommandContext", "CommandArgumentError", "CommandSender", "UserId", "GroupId",
        "PermissionId", "PermitteeId", "Call", "Outcome", "PluginError", "Action", "Reply", "ReplyBuilder",
        "SendBuilder", "Bot", "Event", "MessageEvent", "NoticeEvent", "RequestEvent", "MetaEvent", "Message", "Segment",
    ):  # fmt: skip
        assert name in plughost.sdk.__all__, name
        assert getattr(plughost.sdk, name).__module__.startswith("plughost.sdk"), name


def test_importing_the_sdk_does_not_import_the_host() -> None:
    code = "import sys, plughost.sdk; print(sorted(m for m in sys.modules if m.startswith('plughost.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "plughost.sdk" in loaded
    for layer in ("plughost.core", "plughost.guard", "plughost.runtime", "plughost.bot", "plughost.host"):
        assert f"'{layer}" not in loaded, layer
