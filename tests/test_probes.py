"""Enforcement probes: every control refuses its forbidden action on the real kernel, and the
same probe with the control off succeeds, so each probe is shown able to fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compile_static

from kit.rootfs import build_rootfs
from kit.security import enforcement

pytestmark = pytest.mark.usefixtures("kit_root")


@pytest.fixture(scope="module")
def probe_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root of this module's own: the read-only probe writes to /usr when off."""
    root = tmp_path_factory.mktemp("probes") / "rootfs"
    build_rootfs(root, "busybox")
    return root


@pytest.fixture(scope="module")
def setuid_helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a setuid-root static program that prints its effective uid."""
    build = tmp_path_factory.mktemp("euid")
    program = compile_static(
        "#include <stdio.h>\n#include <unistd.h>\n"
        'int main(void) { printf("%d\\n", (int)geteuid()); return 0; }\n',
        build / "euid-built",
    )
    directory = build / "suid"
    enforcement.prepare_setuid_helper(str(directory), str(program))
    assert (directory / "euid").stat().st_mode & 0o4000
    return directory


@pytest.mark.parametrize("probe", enforcement.PROBES, ids=lambda p: p.key)
@pytest.mark.parametrize("enforced", [True, False], ids=["control-on", "control-off"])
def test_probe(
    probe: enforcement.Probe, enforced: bool, probe_rootfs: Path, setuid_helper: Path
) -> None:
    result = enforcement.run(
        probe, str(probe_rootfs), enforced=enforced, helper_dir=str(setuid_helper)
    )
    assert result.as_expected, (
        f"{probe.key} with the control {'on' if enforced else 'off'}: "
        f"got {result.outcome}, expected {result.expected}\n{result.stderr}"
    )
    # The two expectations differ, so a probe that always gave one answer would fail here.
    assert probe.enforced != probe.broken


def test_read_only_probe_leaves_the_root_filesystem_as_it_was(probe_rootfs: Path) -> None:
    probe = enforcement.probe("read-only-root")
    enforcement.run(probe, str(probe_rootfs), enforced=False)
    assert not (probe_rootfs / "usr" / ".kit-probe").exists()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("ok\n", "ok"),
        ("error: touch: /usr/x: Read-only file system\n", "EROFS"),
        ("error: sh: 1: cannot create /proc/sys/kernel/hostname: Read-only file system", "EROFS"),
        ("error: sh: /probe/run.sh: Permission denied\n", "EACCES"),
        ("error: unshare: unshare(0x10000000): Operation not permitted\n", "EPERM"),
        ("error: something odd\n", "something odd"),
        ("noise\nempty\n", "empty"),
        ("", "no output"),
    ],
)
def test_outcome_names_the_errno(output: str, expected: str) -> None:
    assert enforcement.outcome(output) == expected


def test_a_probe_is_a_command_a_learner_can_type(probe_rootfs: Path) -> None:
    argv = enforcement.probe("noexec-tmpfs").command_line(str(probe_rootfs), enforced=False)
    assert argv[:4] == ["run", "--rm", "--tmpfs", "/probe:exec"]
    assert argv[-3:-1] == ["/bin/sh", "-c"]
