"""Landlock on the real kernel: the container's program reaches only the listed paths.

Each probe runs with the control off too, to show it can fail. The busybox rootfs is one
static binary, so ``/bin:rx`` is all a shell needs to run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import kit_command

from kit.linux import landlock as ll
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.security import landlock
from kit.spec import LandlockRule

pytestmark = pytest.mark.usefixtures("kit_root")

ABI = ll.abi_version()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="this kernel has no Landlock")


def run(rootfs: Path, *command: str, options: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command)


RULES = ("--landlock", "/bin:rx", "--landlock", "/tmp:rw", "--landlock", "/dev:rw")


@needs_landlock
@pytest.mark.parametrize("sandboxed", [True, False], ids=["landlock", "control"])
def test_landlock_denies_a_path(busybox_rootfs: Path, sandboxed: bool) -> None:
    result = run(
        busybox_rootfs,
        "sh",
        "-c",
        "cat /etc/hostname && echo read-etc; echo ok > /tmp/f && cat /tmp/f",
        options=RULES if sandboxed else (),
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout.split()  # /tmp stays usable either way
    if sandboxed:
        assert "read-etc" not in result.stdout
        assert "Permission denied" in result.stderr
    else:
        assert "read-etc" in result.stdout


@needs_landlock
@pytest.mark.parametrize("sandboxed", [True, False], ids=["landlock", "control"])
def test_read_only_rule_denies_writes(busybox_rootfs: Path, sandboxed: bool) -> None:
    rules = ("--landlock", "/bin:rx", "--landlock", "/tmp:ro") if sandboxed else ()
    result = run(busybox_rootfs, "sh", "-c", "echo x > /tmp/new && echo wrote", options=rules)
    if sandboxed:
        assert result.returncode != 0 and "wrote" not in result.stdout
        assert "Permission denied" in result.stderr
    else:
        assert result.stdout.strip() == "wrote"


@needs_landlock
def test_execute_is_a_right_of_its_own(busybox_rootfs: Path) -> None:
    # /bin readable but not executable: the program itself cannot be started.
    result = run(busybox_rootfs, "/bin/sh", "-c", "true", options=("--landlock", "/bin:ro"))
    assert result.returncode == 126
    assert "EACCES" in result.stderr


@needs_landlock
def test_rule_on_a_single_file(busybox_rootfs: Path) -> None:
    result = run(
        busybox_rootfs,
        "sh",
        "-c",
        "cat /etc/passwd > /dev/null && echo passwd; cat /etc/group || echo no-group",
        options=("--landlock", "/bin:rx", "--landlock", "/etc/passwd:ro", "--landlock", "/dev:rw"),
    )
    assert result.stdout.split() == ["passwd", "no-group"]


@needs_landlock
def test_landlock_sets_no_new_privs_itself_and_says_so(busybox_rootfs: Path) -> None:
    spec = default_spec(["cat", "/proc/self/status"], str(busybox_rootfs))
    spec.process.no_new_privileges = False
    spec.kit.landlock = [LandlockRule("/", ["read", "execute"])]
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.code == 0, status.error
    status_lines = dict(
        line.split(":", 1) for line in status.stdout.decode().splitlines() if ":" in line
    )
    assert status_lines["NoNewPrivs"].strip() == "1"
    assert any("Landlock requires no_new_privs" in (e.message or "") for e in container.events)
    assert any(e.name == "landlock_restrict_self" and e.errno is None for e in container.events)


@needs_landlock
def test_missing_rule_path_is_explained(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "true", options=("--landlock", "/bin:rx", "--landlock", "/nope"))
    assert result.returncode == 125
    assert "/nope cannot be opened in the container" in result.stderr


@pytest.mark.parametrize("value", ["bin:rx", "/bin:rwxx", "/bin:write"])
def test_bad_landlock_rules(busybox_rootfs: Path, value: str) -> None:
    result = run(busybox_rootfs, "true", options=("--landlock", value))
    assert result.returncode == 2
    assert "invalid --landlock" in result.stderr


def test_rule_parsing_and_rights() -> None:
    assert landlock.parse_rule("/tmp:rw") == LandlockRule("/tmp", ["read", "write"])
    assert landlock.parse_rule("/usr/lib/") == LandlockRule("/usr/lib", ["read"])
    assert landlock.rights_of(LandlockRule("/", ["execute"])) == ll.EXECUTE
    assert ll.fs_rights(1) == (1 << 13) - 1
    assert ll.fs_rights(2) & ll.REFER and not ll.fs_rights(2) & ll.TRUNCATE
    assert ll.fs_rights(7) == ll.fs_rights(5) == ll.fs_rights(4) | ll.IOCTL_DEV
    assert ll.fs_rights(0) == 0


def test_no_landlock_is_an_error_not_a_no_op() -> None:
    error = landlock.unavailable(0)
    assert "no Landlock" in str(error) and "kit doctor" in str(error)
