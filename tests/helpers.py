"""Small helpers shared by tests (import with ``from helpers import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kit import mounts


def kit_command(*args: str, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kit ARGS`` (the real CLI, in its own process) and capture its output;
    ``check``: a non-zero exit fails the test, with what kit said."""
    options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60}
    options.update(kwargs)
    result = subprocess.run([sys.executable, "-m", "kit", *args], check=False, **options)
    if check and result.returncode != 0:
        raise AssertionError(
            f"kit {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def kit_popen(*args: str, **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``python -m kit ARGS`` in the background."""
    return subprocess.Popen([sys.executable, "-m", "kit", *args], **kwargs)


def compile_static(source: str, program: Path, *flags: str) -> Path:
    """Compile the C ``source`` into the static binary ``program`` (it needs no loader or
    libraries, so it runs in any root filesystem); the source is written beside it."""
    source_file = program.with_name(program.name + ".c")
    source_file.write_text(source)
    subprocess.run(
        ["gcc", "-static", "-O2", *flags, "-o", str(program), str(source_file)], check=True
    )
    return program


GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, lines: list[str]) -> None:
    """Compare ``lines`` with tests/golden/NAME (``KIT_UPDATE_GOLDEN=1`` rewrites the file)."""
    path = GOLDEN / name
    text = "\n".join(lines) + "\n"
    if os.environ.get("KIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; see the diff above"


def host_mount_keys() -> set[tuple[str, str, str, str]]:
    """The host's mounts now, as keys to compare with a later :func:`new_mounts_naming`."""
    return {m.key for m in mounts.read()}


def new_mounts_naming(before: set[tuple[str, str, str, str]], *paths: Path) -> list[str]:
    """Host mounts that appeared since ``before`` (:func:`host_mount_keys`) and name one of
    ``paths`` (in their mount point, root, source or options: an image's overlay names its
    layers). Other sessions on this machine mount and unmount their own things meanwhile;
    only this test's count."""
    names = [str(path) for path in paths]
    found = []
    for m in mounts.read():
        text = " ".join((m.mount_point, m.root, m.source, *m.super_options))
        if m.key not in before and any(name in text for name in names):
            found.append(m.mount_point)
    return found


#: The lines of /proc/PID/status that say who a process is and what it may do: the state a
#: process joining a container (exec) or another runtime (runc) must end up with too.
SECURITY_STATUS = (
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
)


def status_fields(text: str, keys: tuple[str, ...] = SECURITY_STATUS) -> dict[str, str]:
    """``KEY: value`` lines of a /proc/PID/status text whose KEY is one of ``keys``."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            fields[key] = value.strip()
    return fields


#: Runs ``python -m kit ARGS`` as uid/gid 65534 inside a user namespace whose limit of further
#: user namespaces is 0 (the limit is per user namespace, so the host is untouched): a user
#: with neither root nor rootless mode. The parent (root on the host) writes the id maps.
_NO_USERNS = r"""
import os, sys
from kit.linux.namespaces import unshare
from kit.linux.flags import CLONE_NEWUSER
go_r, go_w = os.pipe()
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:
    unshare(CLONE_NEWUSER)
    os.write(ready_w, b"x")
    os.read(go_r, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    python = sys.argv[1]
    os.execv(python, [python, "-m", "kit", *sys.argv[2:]])
os.read(ready_r, 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write("0 0 1\n65534 65534 1\n")
os.write(go_w, b"x")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def kit_as_unprivileged_without_userns(
    *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``kit ARGS`` as an ordinary user who cannot create user namespaces.

    The user runs a Python it may reach (root's pyenv is private), with kit from this
    checkout on PYTHONPATH.
    """
    from unprivileged import interpreter, readable_checkout

    options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60}
    options.update(kwargs)
    env = dict(options.pop("env", None) or os.environ)
    env["PYTHONPATH"] = str(readable_checkout())
    return subprocess.run(
        [sys.executable, "-c", _NO_USERNS, interpreter(), *args], check=False, env=env, **options
    )


def root_field_of(path: str | Path) -> str:
    """What mountinfo's root field shows for a bind mount of ``path``: its path inside its own
    filesystem (``path`` itself only when that filesystem is mounted at /)."""
    path = os.path.realpath(path)
    holders = [m for m in mounts.read() if Path(path).is_relative_to(m.mount_point)]
    deepest = max(len(m.mount_point) for m in holders)
    holder = [m for m in holders if len(m.mount_point) == deepest][-1]  # the topmost there
    inside = os.path.relpath(path, holder.mount_point)
    return os.path.normpath(os.path.join(holder.root, inside))
