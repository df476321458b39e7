"""A lesson's shell in a container: confined exactly like the container, on the real kernel.

"Open a shell here", a challenge's solution and a step's look inside all run through the
command :meth:`lessons.session.Session.shell` builds. In a container that runs its program it
joins like ``kit exec`` (namespaces, cgroup, user, capabilities, no_new_privs, seccomp); in a
container paused before it confines itself, it joins what exists (namespaces, root, cgroup),
which is then exactly what the container's PID 1 has. Each test compares the shell's
``/proc/self/status`` and cgroup with PID 1's, read through the same (the container's) /proc.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.runtime.defaults import default_spec
from lessons.catalog import find
from lessons.live import LiveContainer
from lessons.session import Session

FIELDS = ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")

#: Prints the shell's and PID 1's status fields and cgroups, as the container's /proc has them.
COMPARE = (
    'for p in self 1; do echo "== $p"; '
    "grep -e ^Uid -e ^Gid -e ^Cap -e ^NoNewPrivs -e ^Seccomp: /proc/$p/status; "
    'cat /proc/$p/cgroup; done; echo "== env $KIT_LESSON_SHELL"'
)


def sections(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("== "):
            current = line[3:]
            found[current] = []
        else:
            found[current].append(line)
    return found


def fields(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key in FIELDS:
            out[key] = " ".join(value.split())
    return out


def cgroups(lines: list[str]) -> list[str]:
    return [line for line in lines if line.split(":")[0].isdigit()]


@pytest.fixture
def session(kit_root: Path, tmp_path: Path) -> Iterator[Session]:
    made = Session(find("container-view"), workspace=tmp_path / "workspace")
    try:
        yield made
    finally:
        made.close()


def keep(session: Session, name: str, rootfs: Path, pauses: list[str]) -> LiveContainer:
    spec = default_spec(["sleep", "1000"], str(rootfs), hostname=name)
    box = LiveContainer(name, spec, pauses=pauses, run_program=True)
    session.keep(box)
    box.advance()
    return box


def run_in_shell(session: Session, commands: str) -> tuple[bool, str]:
    """What the learner's shell prints for ``commands`` (and whether it joined like exec)."""
    command = session.shell()
    assert command is not None and command.argv[-1] == "/bin/sh"
    done = subprocess.run(
        [*command.argv, "-c", commands],
        env=command.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return command.confined, done.stdout


def test_a_shell_in_a_running_container_is_confined_like_it(
    session: Session, busybox_rootfs: Path
) -> None:
    keep(session, "box", busybox_rootfs, [])
    confined, output = run_in_shell(session, COMPARE)
    assert confined
    found = sections(output)
    mine, theirs = fields(found["self"]), fields(found["1"])
    assert set(mine) == set(FIELDS)
    assert mine == theirs  # user, every capability set, no_new_privs, seccomp
    assert theirs["Seccomp"] == "2" and theirs["NoNewPrivs"] == "1"
    assert cgroups(found["self"]) == cgroups(found["1"]) != []  # the container's cgroups
    assert "env lesson 1" in found  # the shell's own environment, on top of the container's
    # A challenge's solution runs the same way.
    said = session.exec("box", "grep Seccomp: /proc/self/status").stdout
    assert said.split() == ["Seccomp:", "2"]


def test_a_shell_in_a_paused_container_joins_what_exists(
    session: Session, busybox_rootfs: Path
) -> None:
    box = keep(session, "paused", busybox_rootfs, ["pivot-root"])
    assert box.pause is not None and box.pause.stage == "pivot-root" and not box.confined
    confined, output = run_in_shell(session, COMPARE)
    assert not confined
    found = sections(output)
    mine, theirs = fields(found["self"]), fields(found["1"])
    # PID 1 is still kit's init: every capability, no filter yet. So is the shell, and it is
    # in the container's cgroups (joined before the namespaces).
    assert mine == theirs
    assert theirs["Seccomp"] == "0" and theirs["CapEff"] == theirs["CapBnd"]
    assert cgroups(found["self"]) == cgroups(found["1"]) != []
    # Its / is the container's root filesystem (pivot-root is done), not the host's.
    listing = session.exec("paused", "ls /").stdout.split()
    assert sorted(listing) == sorted(p.name for p in busybox_rootfs.iterdir())


def test_confinement_starts_with_the_first_process_stage(
    session: Session, busybox_rootfs: Path
) -> None:
    box = keep(session, "stepped", busybox_rootfs, ["pivot-root", "rlimits", "seccomp"])
    seen = []
    while box.pause is not None:
        seen.append((box.pause.stage, box.confined))
        box.advance()
    seen.append(("exec", box.confined))
    assert seen == [("pivot-root", False), ("rlimits", True), ("seccomp", True), ("exec", True)]
    assert box.running
