"""Discovery of native libraries: arch dir then root, extensions, ids, versions, duplicates."""

from __future__ import annotations

from pathlib import Path

from plughost.core.discovery import discover
from plughost.runtime.native import NativeRuntime, discover_libraries
from plughost.runtime.native.discovery import split_library_name
from plughost.runtime.native.library import host_arch, host_os
from plughost.sdk.models import DiscoveryStatus


def touch(path: Path, data: bytes = b"\x7fELF") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_library_names_give_id_and_version() -> None:
    assert split_library_name("alpha-v1.0.4.so") == ("alpha", "1.0.4")
    assert split_library_name("Alpha.DYLIB") == ("Alpha", "")
    assert split_library_name("beta-v2.dll") == ("beta", "2")
    assert split_library_name("gamma-vx.so") == ("gamma-vx", "")  # version must start with a digit
    assert split_library_name("delta-v1.2-rc.1+b.so") == ("delta", "1.2-rc.1+b")
    assert split_library_name("notes.txt") is None


def test_arch_directory_beats_root_and_higher_version_wins(tmp_path: Path) -> None:
    arch_dir = tmp_path / host_os() / host_arch()
    touch(tmp_path / "alpha-v9.0.0.so")
    in_arch = touch(arch_dir / "alpha-v1.0.0.so")
    touch(tmp_path / "beta-v1.2.0.so")
    newer = touch(tmp_path / "beta-v1.10.0.so")
    plain = touch(tmp_path / "gamma.SO")
    found = discover_libraries(tmp_path)
    by_id = {lib.id: lib for lib in found.libraries}
    assert by_id["alpha"].path == in_arch and by_id["alpha"].origin == "arch"
    assert by_id["beta"].path == newer and by_id["beta"].version == "1.10.0"
    assert by_id["beta"].manifest.version == "1.10.0" and by_id["beta"].manifest.runtime == "native"
    assert by_id["gamma"].path == plain and by_id["gamma"].manifest.version == "0.0.0"
    reasons = {p.name: r for p, r in found.skipped}
    assert "architecture directory" in reasons["alpha-v9.0.0.so"]
    assert "beta-v1.10.0.so has the same id and a higher" in reasons["beta-v1.2.0.so"]


def test_other_architectures_are_ignored(tmp_path: Path) -> None:
    other = "arm64" if host_arch() != "arm64" else "amd64"
    touch(tmp_path / host_os() / other / "alpha.so")
    assert discover_libraries(tmp_path).libraries == []


def test_invalid_ids_and_directories_are_skipped_with_a_reason(tmp_path: Path) -> None:
    touch(tmp_path / "-bad.so")
    (tmp_path / "dir.so").mkdir()
    touch(tmp_path / "readme.md")
    found = discover_libraries(tmp_path)
    assert found.libraries == []
    reasons = {p.name: r for p, r in found.skipped}
    assert reasons == {"-bad.so": "'-bad' is not a valid plugin id", "dir.so": "not a regular file"}


def test_plugin_toml_beside_the_library_adds_permissions_and_limits(tmp_path: Path) -> None:
    touch(tmp_path / "alpha-v1.2.0.so")
    (tmp_path / "plugin.toml").write_text(
        'id = "alpha"\nruntime = "native"\nisolation = "process"\n'
        "[permissions]\nnetwork = false\n[limits]\ntimeout_s = 2.5\n"
    )
    lib = discover_libraries(tmp_path).libraries[0]
    assert lib.manifest.permissions.network is False
    assert lib.manifest.limits.timeout_s == 2.5
    assert lib.manifest.isolation == "process"
    assert lib.manifest.entry == "alpha-v1.2.0.so" and lib.manifest.version == "1.2.0"


def test_broken_plugin_toml_makes_an_invalid_candidate(tmp_path: Path) -> None:
    touch(tmp_path / "alpha.so")
    (tmp_path / "alpha.plugin.toml").write_text('id = "alpha"\nruntime = "native"\nisolation = "chroot"\n')
    candidates = NativeRuntime().discover(tmp_path)
    assert [c.status for c in candidates] == [DiscoveryStatus.INVALID]
    assert "isolation" in str(candidates[0].errors[0])


def test_core_discovery_finds_native_libraries_without_a_manifest(tmp_path: Path) -> None:
    touch(tmp_path / "alpha-v1.0.4.so")
    touch(tmp_path / "9lives.so")
    touch(tmp_path / "_x!.so")
    report = discover([tmp_path], {"native": NativeRuntime()}, entry_points=False)
    assert set(report.candidates) == {"alpha", "9lives"}
    alpha = report.candidates["alpha"]
    assert alpha.runtime == "native" and alpha.status is DiscoveryStatus.AVAILABLE
    assert alpha.manifest is not None and alpha.manifest.version == "1.0.4"
    assert [c.id for c in report.invalid] == ["_x!"]
