"""``-u USER[:GROUP]``: ids, and names looked up in the *container's* /etc/passwd and /etc/group."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import kit_command, kit_popen
from lifecycle_helpers import container_pid, parent_pid, wait_for

from kit.errors import KitError
from kit.security import users

pytestmark = pytest.mark.usefixtures("kit_root")


def run(rootfs: Path, *command: str, options: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command)


@pytest.fixture
def own_rootfs(busybox_rootfs: Path, tmp_path: Path) -> Path:
    """A private copy of the busybox rootfs that a test may change."""
    dest = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    return dest


def test_user_by_name(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "sh", "-c", "id; echo $HOME", options=("-u", "learner"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [
        "uid=1000(learner) gid=1000(learner)",
        "/home/learner",
    ]


def test_numeric_user_and_group(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "id", options=("-u", "1000:65534"))
    assert result.stdout.strip().startswith("uid=1000(learner) gid=65534(nogroup)")


def test_name_and_group_name(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "id", options=("-u", "learner:nogroup"))
    assert result.stdout.strip().startswith("uid=1000(learner) gid=65534(nogroup)")


def test_uid_without_an_entry_gets_gid_0_and_home_slash(busybox_rootfs: Path) -> None:
    # Docker's rule: a uid unknown to /etc/passwd runs with gid 0 and HOME=/.
    result = run(busybox_rootfs, "sh", "-c", "id -u; id -g; echo $HOME", options=("-u", "4321"))
    assert result.stdout.split() == ["4321", "0", "/"]


def test_explicit_home_wins(busybox_rootfs: Path) -> None:
    result = run(
        busybox_rootfs, "sh", "-c", "echo $HOME", options=("-u", "learner", "-e", "HOME=/tmp")
    )
    assert result.stdout.strip() == "/tmp"


def test_supplementary_groups_come_from_the_containers_group_file(own_rootfs: Path) -> None:
    group = own_rootfs / "etc" / "group"
    group.write_text(group.read_text() + "audio:x:29:learner\nvideo:x:44:someone,learner\n")
    result = run(own_rootfs, "id", "-G", options=("-u", "learner"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "29", "44"]


def test_names_are_the_containers_not_the_hosts(own_rootfs: Path) -> None:
    # "root" exists on the host too; in this rootfs it is uid 4242.
    passwd = own_rootfs / "etc" / "passwd"
    passwd.write_text("root:x:4242:4242:root:/root:/bin/sh\n")
    result = run(own_rootfs, "id", "-u", options=("-u", "root"))
    assert result.stdout.strip() == "4242"


def test_a_symlinked_passwd_cannot_reach_the_host(own_rootfs: Path, tmp_path: Path) -> None:
    # A hostile image: /etc/passwd points at a host file naming user "escapee". Looked up
    # after pivot_root, the absolute link resolves inside the container, where it is missing.
    host_file = tmp_path / "host-passwd"
    host_file.write_text("escapee:x:4242:4242::/:/bin/sh\n")
    passwd = own_rootfs / "etc" / "passwd"
    passwd.unlink()
    passwd.symlink_to(host_file)
    result = run(own_rootfs, "id", options=("-u", "escapee"))
    assert result.returncode == 125
    assert "no user named 'escapee' in the container's /etc/passwd" in result.stderr


def test_a_fifo_as_passwd_does_not_hang(own_rootfs: Path) -> None:
    passwd = own_rootfs / "etc" / "passwd"
    passwd.unlink()
    os.mkfifo(passwd)
    result = run(own_rootfs, "id", options=("-u", "learner"))
    assert result.returncode == 125
    assert "/etc/passwd in the container is not a regular file" in result.stderr


def test_parent_death_still_kills_a_non_root_container(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    # Changing the effective uid clears PR_SET_PDEATHSIG; the identity stage sets it again.
    command = ["run", "-u", "1000", "--rootfs", str(busybox_rootfs), "sleep", "1000"]
    kit = kit_popen(*command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = container_pid(kit_root, timeout=20)

        def runs_as_1000() -> bool:
            with open(f"/proc/{pid}/status") as f:
                return any(line.split()[:2] == ["Uid:", "1000"] for line in f)

        wait_for(runs_as_1000, timeout=20, what="the program to run as uid 1000")
        os.kill(parent_pid(pid), signal.SIGKILL)  # the init parent dies without a word
        wait_for(
            lambda: not os.path.exists(f"/proc/{pid}"),
            timeout=20,
            what="the container to end with its init parent",
        )
    finally:
        kit.kill()
        kit.wait()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("learner:", "must not be empty"),
        ("bad name", "neither a number nor a valid user name"),
        ("99999999999", "out of range"),
        ("1000:no/group", "neither a number nor a valid group name"),
    ],
)
def test_bad_user(busybox_rootfs: Path, value: str, message: str) -> None:
    result = run(busybox_rootfs, "true", options=("-u", value))
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_group_name(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "true", options=("-u", "learner:wheel"))
    assert result.returncode == 125
    assert "no group named 'wheel'" in result.stderr


def test_resolve_is_pure() -> None:
    passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\nann:x:1000:100::/home/ann:/bin/sh\n"
    group = "users:x:100:\nwheel:x:10:ann,bob\ndocker:x:999:ann\n"
    found = users.resolve("ann", passwd, group)
    assert (found.uid, found.gid, found.additional_gids, found.home) == (
        1000,
        100,
        (10, 999),
        "/home/ann",
    )
    assert users.resolve("0", passwd, group).home == "/root"
    assert users.resolve("1000:wheel", passwd, group).gid == 10
    with pytest.raises(KitError):
        users.resolve("bob", passwd, group)
