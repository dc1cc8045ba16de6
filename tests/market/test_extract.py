"""The extraction guard: what it refuses, what it keeps, and (hypothesis) that nothing ever lands outside."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.market.conftest import tar_archive

from plughost.market.errors import UnsafeArchive
from plughost.market.extract import ArchiveLimits, extract_archive, safe_parts


def zip_archive(members: list[tuple[str, str, bytes | str]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    raw = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(raw, "w", compression=compression) as zipped:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": on purpose
        for name, kind, content in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            data = content.encode() if isinstance(content, str) else content
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            elif kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
            else:
                info.external_attr = (stat.S_IFREG | (0o755 if kind == "exec" else 0o644)) << 16
            info.compress_type = compression
            zipped.writestr(info, data)
    return raw.getvalue()


def unpack(tmp_path: Path, data: bytes, limits: ArchiveLimits | None = None) -> Path:
    archive = tmp_path / "archive"
    archive.write_bytes(data)
    target = tmp_path / "out" / "plugin"
    target.parent.mkdir(exist_ok=True)
    extract_archive(archive, target, limits)
    return target


def refused(tmp_path: Path, data: bytes, words: str, limits: ArchiveLimits | None = None) -> None:
    with pytest.raises(UnsafeArchive, match=words):
        unpack(tmp_path, data, limits)
    assert list((tmp_path / "out").iterdir()) == []  # nothing left behind


def test_a_plain_archive_unpacks_with_safe_modes(tmp_path: Path) -> None:
    data = zip_archive(
        [("plugin.toml", "file", "id='x'"), ("bin/", "dir", ""), ("bin/tool", "exec", "#!/bin/sh"),
         ("docs/readme.txt", "file", "hi"), ("latest", "symlink", "docs/readme.txt")]
    )  # fmt: skip
    target = unpack(tmp_path, data)
    assert (target / "docs" / "readme.txt").read_text() == "hi"
    assert stat.S_IMODE((target / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "plugin.toml").stat().st_mode) == 0o644
    assert os.readlink(target / "latest") == "docs/readme.txt"


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ([("../evil", "file", "x")], r"'\.\.' leaves the plugin directory"),
        ([("a/../../evil", "file", "x")], r"'\.\.' leaves"),
        ([("/tmp/evil", "file", "x")], "absolute path"),
        ([("C:/evil", "file", "x")], "absolute path"),
        ([("a\\..\\evil", "file", "x")], "backslash"),
        ([("out", "symlink", "../outside")], "points out of the plugin directory"),
        ([("out", "symlink", "/etc/passwd")], "absolute path"),
        ([("a", "file", "x"), ("a", "file", "y")], "appears twice"),
        ([("link", "symlink", "."), ("link/evil", "file", "x")], "appears twice|below"),
        # each link stays inside on its own; together they resolve out (link/.. = the root's parent)
        ([("d/", "dir", ""), ("d/up", "symlink", ".."), ("hop", "symlink", "d/up/d/up/..")], "resolves out"),
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "drive",
        "backslash",
        "link-out",
        "link-absolute",
        "twice",
        "below-a-link",
        "link-chain",
    ],
)
def test_dangerous_members_are_refused_in_tar_and_zip(
    tmp_path: Path, members: list[tuple[str, str, bytes | str]], words: str
) -> None:
    (tmp_path / "tar").mkdir()
    refused(tmp_path / "tar", tar_archive(members), words)
    (tmp_path / "zip").mkdir()
    refused(tmp_path / "zip", zip_archive(members), words)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out").exists()


def test_devices_fifos_and_hard_links_are_refused(tmp_path: Path) -> None:
    for kind, words in ((tarfile.CHRTYPE, "character device"), (tarfile.FIFOTYPE, "FIFO"), (tarfile.LNKTYPE, "hard")):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("dev")
            info.type, info.linkname = kind, "plugin.toml"
            tar.addfile(info)
        case = tmp_path / str(kind)
        case.mkdir()
        refused(case, raw.getvalue(), words)
    (tmp_path / "zip").mkdir()
    refused(tmp_path / "zip", zip_archive([("pipe", "fifo", "")]), "FIFO")


def test_a_zip_bomb_is_stopped_at_the_limit(tmp_path: Path) -> None:
    bomb = zip_archive([("zeros", "file", bytes(8 << 20))])
    assert len(bomb) < 64 << 10  # 8 MiB of zeros in a few KiB
    limits = ArchiveLimits(max_bytes=1 << 20, max_files=100)
    refused(tmp_path, bomb, "more than the limit", limits)


def test_a_tar_bomb_is_stopped_while_it_is_read(tmp_path: Path) -> None:
    bomb = tar_archive([("zeros", "file", bytes(8 << 20))])
    refused(tmp_path, bomb, "more than", ArchiveLimits(max_bytes=1 << 20, max_files=100))


def test_too_many_files_are_refused(tmp_path: Path) -> None:
    many = tar_archive([(f"f{i}", "file", "") for i in range(50)])
    (tmp_path / "tar").mkdir()
    refused(tmp_path / "tar", many, "more than 20 members", ArchiveLimits(max_files=20))
    (tmp_path / "zip").mkdir()
    refused(
        tmp_path / "zip",
        zip_archive([(f"f{i}", "file", "") for i in range(50)]),
        "50 members",
        ArchiveLimits(max_files=20),
    )


def test_something_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, b"<html>not found</html>", "neither a zip nor a tar")
    (tmp_path / "cut").mkdir()
    refused(tmp_path / "cut", tar_archive([("a", "file", os.urandom(5000))])[:3000], "readable tar|damaged")


def test_names_are_normalised_or_refused() -> None:
    assert safe_parts("./a//b/") == ("a", "b")
    assert safe_parts("./") == ()
    for bad in ("..", "a/../..", "/x", "a\x00b", "x\\y"):
        with pytest.raises(UnsafeArchive):
            safe_parts(bad)


# property: whatever the archive holds, nothing is created outside the target ---------------------------------
COMPONENTS = st.sampled_from(["a", "b", "..", ".", "", "c.txt"])
NAMES = st.lists(COMPONENTS, min_size=1, max_size=4).map("/".join) | st.sampled_from(["/abs", "/", "../x", "a/../../b"])
TARGETS = NAMES | st.sampled_from(["/etc", "..", "../..", "a/../..", "b/../../x"])
MEMBERS = st.lists(st.tuples(NAMES, st.sampled_from(["file", "dir", "symlink"]), TARGETS), min_size=1, max_size=6)


def _outside(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "out" not in p.relative_to(root).parts[:1]}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(members=MEMBERS, as_zip=st.booleans())
def test_nothing_ever_lands_outside_the_target(
    tmp_path_factory: pytest.TempPathFactory, members: list[tuple[str, str, str]], as_zip: bool
) -> None:
    case = tmp_path_factory.mktemp("prop")
    (case / "sibling").write_text("untouched")
    before = _outside(case)
    entries: list[tuple[str, str, bytes | str]] = [
        (name, kind, target if kind == "symlink" else "data") for name, kind, target in members
    ]
    if as_zip:  # zipfile cannot even write a member without a name
        entries = [(name or ".", kind, target) for name, kind, target in entries]
    data = zip_archive(entries) if as_zip else tar_archive(entries)
    archive = case / "archive"
    archive.write_bytes(data)
    before.add("archive")
    target = case / "out" / "plugin"
    target.parent.mkdir()
    try:
        extract_archive(archive, target, ArchiveLimits(max_bytes=1 << 16, max_files=50))
    except UnsafeArchive:
        assert not target.exists()  # refused: nothing left
    else:
        root = os.path.realpath(target)
        for path in target.rglob("*"):
            real = os.path.realpath(path)
            assert real == root or real.startswith(root + os.sep), f"{path} resolves to {real}"
            assert not path.is_file() or path.is_symlink() or stat.S_IMODE(path.stat().st_mode) in (0o644, 0o755)
    assert _outside(case) == before
    assert (case / "sibling").read_text() == "untouched"
