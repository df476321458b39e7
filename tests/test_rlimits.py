"""``--ulimit``: per-process limits, set in the container and seen by its program."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from helpers import kit_command

from kit.errors import KitError
from kit.linux.caps import capget
from kit.security import rlimits
from kit.spec import Rlimit

pytestmark = pytest.mark.usefixtures("kit_root")

CAP_SYS_RESOURCE = 24


def run(rootfs: Path, *command: str, options: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command)


@pytest.mark.parametrize("limited", [True, False], ids=["ulimit", "control"])
def test_nofile_limit_is_applied(busybox_rootfs: Path, limited: bool) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft > 512  # otherwise the control could not tell the difference
    options = ("--ulimit", "nofile=512:1024") if limited else ()
    result = run(busybox_rootfs, "sh", "-c", "ulimit -n; ulimit -Hn", options=options)
    assert result.returncode == 0, result.stderr
    if limited:
        assert result.stdout.split() == ["512", "1024"]
    else:
        shown_hard = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        assert result.stdout.split() == [str(soft), shown_hard]


def test_core_and_several_limits(busybox_rootfs: Path) -> None:
    result = run(
        busybox_rootfs,
        "sh",
        "-c",
        "ulimit -c; ulimit -s",
        options=("--ulimit", "core=0", "--ulimit", "stack=4096000:8192000"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", str(4096000 // 1024)]  # ulimit -s shows KiB


def _has_cap_sys_resource() -> bool:
    return bool(capget().effective & (1 << CAP_SYS_RESOURCE))


def test_raising_the_hard_limit(busybox_rootfs: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the hard nofile limit is already unlimited: nothing to raise")
    wanted = hard + 1000
    result = run(
        busybox_rootfs, "sh", "-c", "ulimit -Hn", options=("--ulimit", f"nofile={hard}:{wanted}")
    )
    if _has_cap_sys_resource():
        # Where kit may raise it, the container gets exactly what was asked.
        assert result.returncode == 0 and result.stdout.strip() == str(wanted)
    else:
        # Here root lacks CAP_SYS_RESOURCE: a clear error, never a different limit.
        assert result.returncode == 125
        assert "cannot raise the hard RLIMIT_NOFILE limit" in result.stderr
        assert "CAP_SYS_RESOURCE" in result.stderr
        assert f"at most {hard}" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nofile", "the form is NAME=SOFT[:HARD]"),
        ("files=10", "unknown --ulimit name"),
        ("nofile=20:10", "soft limit is above the hard limit"),
        ("nofile=many", "not a whole number"),
    ],
)
def test_bad_ulimit(busybox_rootfs: Path, value: str, message: str) -> None:
    result = run(busybox_rootfs, "true", options=("--ulimit", value))
    assert result.returncode == 2
    assert message in result.stderr


def test_parsing() -> None:
    assert rlimits.parse_ulimit("nofile=1024:2048") == Rlimit("RLIMIT_NOFILE", 2048, 1024)
    assert rlimits.parse_ulimit("core=0") == Rlimit("RLIMIT_CORE", 0, 0)
    assert rlimits.parse_ulimit("memlock=unlimited") == Rlimit(
        "RLIMIT_MEMLOCK", rlimits.INFINITY, rlimits.INFINITY
    )
    assert rlimits.kernel_value(rlimits.INFINITY) == resource.RLIM_INFINITY
    with pytest.raises(KitError):
        rlimits.parse_ulimit("nofile=-5")
