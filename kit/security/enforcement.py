"""Enforcement probes: try the forbidden thing, with the control on and with it off.

A setting proves nothing until the kernel is seen refusing something because of it. Each
probe here is one small shell command run as a container's program through ``kit run``,
twice: once with the control on (the kernel must refuse, with a known errno) and once with
the control off (the same command then works, which proves the probe *can* fail, i.e. that
it was the control that refused). Every "off" case is harmless by choice: it writes to the
container's own hostname, a scratch file, a user namespace that dies with the process, or
opens an idle loop device read-only without reading it.

The commands use only what a busybox or a Debian root filesystem has. A command prints one
line: ``ok`` if it worked, or ``error: <message>``; :func:`outcome` turns the message into
the errno name (``EROFS``), since shells print strerror texts, not numbers.
"""

from __future__ import annotations

import errno as errno_module
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

#: strerror text -> errno name, e.g. "Read-only file system" -> "EROFS".
_BY_MESSAGE = {os.strerror(n): name for n, name in errno_module.errorcode.items()}


@dataclass(frozen=True)
class Probe:
    key: str
    title: str
    #: The control being proved, as a learner would name it.
    control: str
    #: Shell command(s); exit status 0 means the forbidden thing worked.
    command: str
    #: ``kit run`` flags with the control on, and with it off ("break it").
    on_flags: tuple[str, ...]
    off_flags: tuple[str, ...]
    #: The outcome with the control on (an errno name, or a word the command prints).
    enforced: str
    #: The outcome with the control off.
    broken: str
    #: What happened when the control was off (harmless here; in real life, why it matters).
    consequence: str
    #: A plain command prints ok/error; a "report" command prints its own one-word outcome.
    reports: bool = False

    def script(self) -> str:
        if self.reports:
            return self.command
        # { ...; } 2>&1 also catches errors of redirections inside the command.
        return f'if out=$( {{ {self.command}; }} 2>&1 ); then echo ok; else echo "error: $out"; fi'

    def flags(self, enforced: bool, **context: str) -> list[str]:
        chosen = self.on_flags if enforced else self.off_flags
        return [flag.format(**context) for flag in chosen]

    def command_line(self, rootfs: str, enforced: bool, **context: str) -> list[str]:
        """The ``kit`` arguments that run this probe (what a learner would type)."""
        flags = self.flags(enforced, **context)
        return ["run", "--rm", *flags, "--rootfs", rootfs, "/bin/sh", "-c", self.script()]


def outcome(output: str) -> str:
    """``ok``, an errno name (``EROFS``), or the reported word; from the probe's output."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return "no output"
    last = lines[-1].strip()
    if not last.startswith("error: "):
        return last
    message = last.rsplit(": ", 1)[-1].strip()
    return _BY_MESSAGE.get(message, message)


PROBES: tuple[Probe, ...] = (
    Probe(
        key="read-only-root",
        title="write to /usr",
        control="--read-only (the root filesystem mounted read-only)",
        command="touch /usr/.kit-probe && rm -f /usr/.kit-probe",
        on_flags=("--read-only",),
        off_flags=(),
        enforced="EROFS",
        broken="ok",
        consequence="a file was created in the image's /usr (and removed again)",
    ),
    Probe(
        key="noexec-tmpfs",
        title="run a script from a noexec tmpfs",
        control="noexec on a tmpfs (--tmpfs /probe, noexec by default)",
        command="printf '#!/bin/sh\\necho ran\\n' > /probe/run.sh && chmod +x /probe/run.sh "
        "&& /probe/run.sh",
        on_flags=("--tmpfs", "/probe"),
        off_flags=("--tmpfs", "/probe:exec"),
        enforced="EACCES",
        broken="ok",
        consequence="a script written into scratch space ran (how downloaded payloads run)",
    ),
    Probe(
        key="proc-sys-read-only",
        title="write a kernel setting in /proc/sys",
        control="read-only paths (/proc/sys remounted read-only)",
        command="echo kit-probe > /proc/sys/kernel/hostname",
        on_flags=(),
        off_flags=("--security-opt", "systempaths=unconfined"),
        enforced="EROFS",
        broken="ok",
        consequence="the container renamed itself through /proc/sys (a namespaced setting; "
        "most of /proc/sys is not namespaced and would change the host)",
    ),
    Probe(
        key="masked-timer-list",
        title="read /proc/timer_list",
        control="masked paths (/dev/null bind-mounted over /proc/timer_list)",
        command="n=0; while IFS= read -r line; do n=$((n+1)); done < /proc/timer_list; "
        'if [ "$n" = 0 ]; then echo empty; else echo "readable"; fi',
        on_flags=(),
        off_flags=("--security-opt", "systempaths=unconfined"),
        enforced="empty",
        broken="readable",
        consequence="the container read the timers of every process on the host",
        reports=True,
    ),
    Probe(
        key="mknod",
        title="create a device node",
        control="capabilities (CAP_MKNOD dropped)",
        command="mknod /tmp/kit-probe c 1 3",
        on_flags=("--cap-drop", "MKNOD"),
        off_flags=(),
        enforced="EPERM",
        broken="ok",
        consequence="a device node (a copy of /dev/null) was created in /tmp",
    ),
    Probe(
        key="device-cgroup",
        title="open a host block device",
        control="the device cgroup (every device denied but the standard ones)",
        # Root keeps CAP_MKNOD, so the node is made; opening it read-only reads nothing.
        # 7:0 is loop0, a block device every Linux host has and nothing here uses.
        command="mknod /dev/kit-disk b 7 0 && : < /dev/kit-disk",
        on_flags=(),
        off_flags=("--device-cgroup-rule", "b 7:0 r"),
        enforced="EPERM",
        broken="ok",
        consequence="root made a node for the host's block device 7:0 (loop0) and opened it "
        "(read-only, nothing read); with the host's real disk, that is every file on the "
        "host, past every mount namespace",
    ),
    Probe(
        key="chown",
        title="give a file away to another user",
        control="capabilities (CAP_CHOWN dropped)",
        command="touch /tmp/kit-probe && chown 1000 /tmp/kit-probe",
        on_flags=("--cap-drop", "CHOWN"),
        off_flags=(),
        enforced="EPERM",
        broken="ok",
        consequence="root gave a file away to user 1000",
    ),
    Probe(
        key="seccomp-unshare",
        title="create a user namespace (unshare -U)",
        control="seccomp (the default profile allows unshare only with CAP_SYS_ADMIN)",
        command="unshare -U true",
        on_flags=(),
        off_flags=("--security-opt", "seccomp=unconfined"),
        enforced="EPERM",
        broken="ok",
        consequence="a user namespace was created; its code has had privilege-escalation "
        "bugs, which is why Docker's profile refuses it",
    ),
    Probe(
        key="setuid",
        title="become root through a setuid-root program",
        control="no_new_privs (setuid bits ignored by execve)",
        command="/kit-suid/euid -u",
        on_flags=("-u", "1000", "-v", "{helper_dir}:/kit-suid:ro"),
        off_flags=(
            "-u",
            "1000",
            "-v",
            "{helper_dir}:/kit-suid:ro",
            "--security-opt",
            "no-new-privileges=false",
        ),
        enforced="1000",
        broken="0",
        consequence="user 1000 ran a program as root (effective uid 0)",
        reports=True,
    ),
)


def probe(key: str) -> Probe:
    for item in PROBES:
        if item.key == key:
            return item
    raise KeyError(key)


def prepare_setuid_helper(directory: str, program: str) -> str:
    """Put a setuid-root copy of ``program`` at ``directory``/euid and return ``directory``.

    Run as ``euid -u``, the copy must print its effective uid: coreutils' ``id`` does (the
    rootfs must have its libraries), or a static program that prints geteuid() and ignores
    its arguments. (busybox will not do: it drops setuid rights for applets like ``id``.)
    The directory is bind-mounted into the container without nosuid, so the setuid bit
    counts there; the container's /tmp could not hold it (it is nosuid).
    """
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, "euid")
    shutil.copyfile(program, target)
    os.chown(target, 0, 0)
    os.chmod(target, 0o4755)
    return directory


@dataclass
class Result:
    probe: Probe
    enforced: bool
    outcome: str
    expected: str
    argv: list[str]
    stderr: str

    @property
    def as_expected(self) -> bool:
        return self.outcome == self.expected


def run(item: Probe, rootfs: str, *, enforced: bool, **context: str) -> Result:
    """Run one probe through ``kit run`` (a separate process, as a user would)."""
    argv = item.command_line(rootfs, enforced, **context)
    done = subprocess.run(
        [sys.executable, "-m", "kit", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(
        item,
        enforced,
        outcome(done.stdout) if done.returncode == 0 else f"kit exited {done.returncode}",
        item.enforced if enforced else item.broken,
        argv,
        done.stderr,
    )
