"""The cache of compiled seccomp filters: the same program as the compiler's, reused only for
exactly what it was compiled from, never trusted when damaged, and used by the CLI's
containers (which the kernel then filters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import kit_command

from kit.security import bpf, seccomp_cache, seccomp_default, seccomp_filter, seccomp_profile
from kit.security.capabilities import DEFAULT_CAPABILITIES


def default_profile() -> dict:
    return seccomp_default.resolved_default_profile(list(DEFAULT_CAPABILITIES))


def compiler_output(profile: dict) -> tuple[bytes, int]:
    parsed = seccomp_profile.parse(profile)
    return bpf.encode(seccomp_filter.compile_profile(parsed)), parsed.flag_bits()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "seccomp-cache"
    seccomp_cache.enable(str(directory))
    yield directory
    seccomp_cache._settings["directory"] = None  # back to "off", as for any library user


def test_off_by_default_compiles_and_writes_nothing(tmp_path: Path) -> None:
    assert seccomp_cache._settings["directory"] is None
    assert seccomp_cache.compiled_filter(default_profile()) == compiler_output(default_profile())


def test_a_cached_program_is_the_compilers_and_is_read_back(cache: Path) -> None:
    profile = default_profile()
    first = seccomp_cache.compiled_filter(profile)
    assert first == compiler_output(profile)
    (entry,) = cache.iterdir()
    # Served from the file now: prove it by changing the program in it (still well formed).
    record = json.loads(entry.read_text())
    record["program"] = bpf.encode([bpf.Instruction(bpf.RET_K, k=bpf.SECCOMP_RET_ALLOW)]).hex()
    entry.write_text(json.dumps(record))
    assert seccomp_cache.compiled_filter(profile) == (bytes.fromhex(record["program"]), 0)


def test_another_profile_gets_its_own_program(cache: Path) -> None:
    profile = default_profile()
    other = json.loads(json.dumps(profile))
    other["defaultErrnoRet"] = 38  # ENOSYS instead of EPERM: another program
    assert seccomp_cache.compiled_filter(profile) == compiler_output(profile)
    assert seccomp_cache.compiled_filter(other) == compiler_output(other)
    assert compiler_output(other) != compiler_output(profile)
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize(
    "damage",
    [
        "not json at all",
        json.dumps({"source": "another compilation", "flags": 0, "program": "06" * 8}),
        json.dumps({"flags": 0, "program": "0600"}),  # no source
    ],
    ids=["torn", "other-source", "incomplete"],
)
def test_a_damaged_or_foreign_file_is_recompiled_and_replaced(cache: Path, damage: str) -> None:
    profile = default_profile()
    seccomp_cache.compiled_filter(profile)
    (entry,) = cache.iterdir()
    entry.write_text(damage)
    assert seccomp_cache.compiled_filter(profile) == compiler_output(profile)
    assert json.loads(entry.read_text())["program"] == compiler_output(profile)[0].hex()


def test_a_partial_instruction_is_never_handed_to_the_kernel(cache: Path) -> None:
    profile = default_profile()
    seccomp_cache.compiled_filter(profile)
    (entry,) = cache.iterdir()
    record = json.loads(entry.read_text())
    record["program"] = record["program"][:-2]  # 7 bytes of the last instruction
    entry.write_text(json.dumps(record))
    assert seccomp_cache.compiled_filter(profile) == compiler_output(profile)


def test_the_record_names_the_machine_and_the_compilers_sources(cache: Path) -> None:
    seccomp_cache.compiled_filter(default_profile())
    (entry,) = cache.iterdir()
    source = json.loads(json.loads(entry.read_text())["source"])
    assert source["profile"] == default_profile()
    assert source["machine"]
    assert [name for name, _, _ in source["compiler"]] == list(seccomp_cache.COMPILER_SOURCES)


def test_an_unwritable_cache_still_gives_the_program(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    seccomp_cache.enable(str(blocker / "cache"))  # a directory under a file: cannot exist
    try:
        assert seccomp_cache.compiled_filter(default_profile()) == compiler_output(
            default_profile()
        )
    finally:
        seccomp_cache._settings["directory"] = None


def test_kit_run_keeps_the_program_and_the_kernel_applies_the_cached_one(
    kit_root: Path, host_rootfs: Path
) -> None:
    script = "grep Seccomp: /proc/self/status; unshare -n true || echo refused"
    for _ in range(2):  # compiled, then read back
        done = kit_command("run", "--rm", "--rootfs", str(host_rootfs), "/bin/sh", "-c", script)
        assert done.returncode == 0, done.stderr
        assert "Seccomp:\t2" in done.stdout
        assert "refused" in done.stdout
    (entry,) = (kit_root / "cache" / "seccomp").iterdir()
    program, _ = compiler_output(default_profile())
    assert json.loads(entry.read_text())["program"] == program.hex()
