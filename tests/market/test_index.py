"""The index format, the [market] settings, signatures, and version/dependency resolution."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tests.market.conftest import Index

from plughost.core.config import HostConfig
from plughost.errors import ConfigError
from plughost.market.errors import DependencyConflict, IndexUnavailable, InvalidIndex, NoCompatibleVersion, NotInIndex
from plughost.market.fetch import LoadedIndex, client, read_source, resolve_url
from plughost.market.index import MarketIndex, parse_index
from plughost.market.resolve import Catalog, Requirements, Resolver
from plughost.market.settings import IndexSource, MarketSettings
from plughost.market.verify import generate_key, sign, verify_signature

SHA = "ab" * 32


def version(number: str, **extra: Any) -> dict[str, Any]:
    return {"version": number, "url": f"x-{number}.tar.gz", "sha256": SHA, **extra}


def document(*plugins: dict[str, Any]) -> bytes:
    return json.dumps({"plugins": list(plugins)}).encode()


def test_a_full_index_parses() -> None:
    index = parse_index(
        document(
            {
                "id": "weather",
                "name": "Weather",
                "description": "Forecasts",
                "tags": ["tools"],
                "author": {"name": "Ada", "email": "ada@example.org"},
                "homepage": "https://example.org",
                "versions": [
                    version("1.0.0", python=["requests>=2"], dependencies=["geo>=1.0"], plughost=">=0.1,<1"),
                    version("1.1.0-rc.1"),
                    version("2.0.0", runtime="native", platforms=["linux/amd64"]),
                    version("2.0.0", runtime="native", url="arm.tar.gz", platforms=["linux/arm64"]),
                ],
            }
        ),
        "test",
    )
    plugin = index.plugin("weather")
    assert plugin is not None and plugin.author_name == "Ada"
    assert plugin.version_numbers() == ["2.0.0", "1.1.0-rc.1", "1.0.0"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"<html>502 bad gateway</html>", "is not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "must be a JSON object"),
        (
            document({"id": "x", "versions": [version("1.0.0")], "licence": "MIT"}),
            r"plugins\.0\.licence: unknown field",
        ),
        (document({"id": "x", "versions": [version("1.0.0", signature="…")]}), r"versions\.0\.signature: unknown"),
        (document({"id": "x", "versions": [version("1.0")]}), "'1.0' is not a semantic version"),
        (document({"id": "x", "versions": [version("1.0.0-banana")]}), "packaging cannot order"),
        (document({"id": "x", "versions": [{"version": "1.0.0", "url": "x.tar.gz"}]}), r"sha256: required field"),
        (document({"id": "x", "versions": [version("1.0.0", sha256="abc")]}), "64 hexadecimal digits"),
        (document({"id": "x", "versions": [version("1.0.0", runtime="native")]}), "must list the platforms"),
        (document({"id": "x", "versions": [version("1.0.0", platforms=["linux"])]}), "not a platform"),
        (document({"id": "x", "versions": [version("1.0.0", dependencies=["y @ http://evil"])]}), "nothing more"),
        (document({"id": "x", "versions": [version("1.0.0", python=["--index-url=http://evil"])]}), "not a Python"),
        (document({"id": "x", "versions": [version("1.0.0", python=["evil @ https://x/e.whl"])]}), "direct URL"),
        (document({"id": "x", "versions": [version("1.0.0"), version("1.0.0")]}), "listed twice"),
        (document({"id": "x", "versions": [version("1.0.0")]}, {"id": "x", "versions": [version("2.0.0")]}), "twice"),
        (document({"id": "../x", "versions": [version("1.0.0")]}), "not a valid plugin id"),
        (json.dumps({"format": 2, "plugins": []}).encode(), "format"),
    ],
    ids=[
        "html",
        "utf16",
        "list",
        "unknown-plugin-field",
        "unknown-version-field",
        "not-semver",
        "bad-prerelease",
        "no-sha256",
        "short-sha256",
        "native-without-platform",
        "bad-platform",
        "url-dependency",
        "pip-option",
        "pip-url",
        "same-version-twice",
        "same-plugin-twice",
        "bad-id",
        "format",
    ],
)
def test_bad_indexes_are_refused_with_the_reason(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidIndex, match=words):
        parse_index(raw, "index 'test'")


def test_settings_are_validated_with_the_file_and_key() -> None:
    config = HostConfig.model_validate({"market": {"indexes": [{"name": "a", "url": "ftp://x/index.json"}]}})
    with pytest.raises(ConfigError, match=r"plughost.toml: market.indexes.0.url: .*http"):
        MarketSettings.from_host_config(config)
    config = HostConfig.model_validate({"market": {"indexes": [{"name": "a", "url": "i.json", "signed_by": ["k"]}]}})
    with pytest.raises(ConfigError, match="unknown key"):
        MarketSettings.from_host_config(config)
    config = HostConfig.model_validate({"market": {"require_signatures": True, "indexes": [{"name": "a", "url": "i"}]}})
    with pytest.raises(ConfigError, match="require_signatures"):
        MarketSettings.from_host_config(config)
    with pytest.raises(ConfigError, match="unknown key"):
        MarketSettings.from_host_config(HostConfig.model_validate({"market": {"indexs": []}}))


def test_signatures_verify_only_with_the_trusted_key() -> None:
    private, public = generate_key()
    _, other_public = generate_key()
    data = document({"id": "x", "versions": [version("1.0.0")]})
    signature = sign(data, private).encode()
    assert verify_signature(data, signature, {"k": public}, ["k"], "index") == "k"
    assert verify_signature(data, signature, {"o": other_public, "k": public}, ["o", "k"], "index") == "k"
    with pytest.raises(InvalidIndex, match="not valid for key"):
        verify_signature(data + b" ", signature, {"k": public}, ["k"], "index")  # one byte changed
    with pytest.raises(InvalidIndex, match="not valid for key"):
        verify_signature(data, signature, {"o": other_public}, ["o"], "index")
    with pytest.raises(InvalidIndex, match="no signature"):
        verify_signature(data, None, {"k": public}, ["k"], "index")


def test_download_urls_resolve_against_their_index() -> None:
    assert resolve_url("https://h/market/index.json", "a/x.tar.gz") == "https://h/market/a/x.tar.gz"
    assert resolve_url("https://h/market/index.json", "https://cdn/x.zip") == "https://cdn/x.zip"
    assert resolve_url("/srv/market/index.json", "x.tar.gz") == "/srv/market/x.tar.gz"
    with pytest.raises(InvalidIndex, match="cannot name local files"):
        resolve_url("https://h/index.json", "file:///etc/passwd")
    with pytest.raises(InvalidIndex, match="only http"):
        resolve_url("https://h/index.json", "ftp://h/x.tar.gz")


# resolution ----------------------------------------------------------------------------------------
def resolver(*plugins: dict[str, Any], present: dict[str, str] | None = None, deps: dict[str, list[str]] | None = None,
             platform: str = "linux/amd64", plughost: str = "0.1.0") -> Resolver:  # fmt: skip
    index = MarketIndex.model_validate({"plugins": list(plugins)})
    loaded = LoadedIndex(IndexSource(name="t", url="https://h/index.json"), index, "https://h/index.json", time.time())
    workspace = Requirements.from_manifests(present or {}, deps or {}, {})
    return Resolver(Catalog([loaded]), workspace, platform=platform, plughost_version=plughost)


def test_dependencies_come_first_and_present_ones_are_left_alone() -> None:
    r = resolver(
        {"id": "app", "versions": [version("1.0.0", dependencies=["lib>=1.1", "util"])]},
        {"id": "lib", "versions": [version("1.0.0"), version("1.2.0"), version("2.0.0-rc.1")]},
        {"id": "util", "versions": [version("0.3.0", dependencies=["lib<2"])]},
    )
    assert [(s.id, s.build.version, s.required_by) for s in r.plan("app")] == [
        ("lib", "1.2.0", "app"),  # final releases before pre-releases
        ("util", "0.3.0", "app"),
        ("app", "1.0.0", None),
    ]
    present = resolver(
        {"id": "app", "versions": [version("1.0.0", dependencies=["lib>=1.1"])]},
        {"id": "lib", "versions": [version("1.2.0")]},
        present={"lib": "1.1.5"},
    )
    assert [s.id for s in present.plan("app")] == ["app"]


def test_cycles_and_conflicts_are_named() -> None:
    cyclic = resolver(
        {"id": "a", "versions": [version("1.0.0", dependencies=["b"])]},
        {"id": "b", "versions": [version("1.0.0", dependencies=["c"])]},
        {"id": "c", "versions": [version("1.0.0", dependencies=["a"])]},
    )
    with pytest.raises(DependencyConflict, match="dependency cycle: a -> b -> c -> a") as caught:
        cyclic.plan("a")
    assert caught.value.detail == {"cycle": ["a", "b", "c", "a"]}
    clash = resolver(
        {"id": "app", "versions": [version("1.0.0", dependencies=["lib>=2"])]},
        {"id": "lib", "versions": [version("2.0.0")]},
        present={"lib": "1.0.0", "old": "1.0.0"},
        deps={"old": ["lib<2"]},
    )
    with pytest.raises(NoCompatibleVersion, match=r"app asks for 'lib>=2'; old requires 'lib<2'"):
        clash.plan("app")
    pinned = resolver(
        {"id": "geo", "versions": [version("1.0.0"), version("2.0.0")]},
        present={"weather": "1.0.0"},
        deps={"weather": ["geo>=2.0"]},
    )
    with pytest.raises(NoCompatibleVersion, match=r"you ask for 'geo==1\.0\.0'; weather requires 'geo>=2\.0'"):
        pinned.plan("geo", version="1.0.0")
    with pytest.raises(NotInIndex, match="requires 'ghost', which no index offers"):
        resolver({"id": "app", "versions": [version("1.0.0", dependencies=["ghost"])]}).plan("app")


def test_platform_plughost_range_and_versions_are_checked() -> None:
    native = {"id": "n", "versions": [version("1.0.0", runtime="native", platforms=["linux/arm64"])]}
    with pytest.raises(NoCompatibleVersion, match=r"no build of any version for linux/amd64 \(builds: linux/arm64\)"):
        resolver(native).plan("n")
    assert resolver(native, platform="linux/arm64").plan("n")[0].build.version == "1.0.0"
    future = {"id": "f", "versions": [version("1.0.0", plughost=">=5")]}
    with pytest.raises(NoCompatibleVersion, match="needs another plughost"):
        resolver(future).plan("f")
    r = resolver({"id": "p", "versions": [version("1.0.0"), version("1.1.0-rc.1")]})
    assert r.plan("p")[0].build.version == "1.0.0"
    assert r.plan("p", version="1.1.0-rc.1")[0].build.version == "1.1.0-rc.1"  # asked for by version
    with pytest.raises(NotInIndex, match=r"no version 9\.9\.9 \(versions: 1\.1\.0-rc\.1, 1\.0\.0\)"):
        r.plan("p", version="9.9.9")
    with pytest.raises(NotInIndex, match="no index offers a plugin 'nope'"):
        r.plan("nope")


@pytest.mark.parametrize(("hang_ups", "served"), [(1, True), (2, True), (3, False)])
async def test_a_server_that_hangs_up_without_answering_is_asked_again(
    index: Index, hang_ups: int, served: bool
) -> None:
    url = f"{index.server.url}/hangup-{hang_ups}/{index.dir.name}/index.json"
    async with client(MarketSettings()) as http:
        if served:  # a GET is safe to send again: the index arrives
            assert await read_source(url, http, 1 << 20) == (index.dir / "index.json").read_bytes()
        else:
            with pytest.raises(IndexUnavailable, match="Server disconnected without sending a response"):
                await read_source(url, http, 1 << 20)
