"""The probe: real, harmless attempts (create a user namespace, mount an overlay) made in a
fresh interpreter, one forked child per attempt.

Attempts that change process state (unshare, setresuid, mounts) never happen in the calling
process: :func:`probe` runs ``python -m kit.doctor --probe all``, which forks one child per
attempt, each child in its own private mount namespace, so nothing can leak to the host and
the caller may be multi-threaded (the TUI's worker). The probe streams back its results and the
system calls it made, which are re-emitted on this process's tracer.

Everything the probes use is imported at the top of this module, not lazily: kit itself may
live below SCRATCH, which a probe child covers with a tmpfs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kit.doctor.readers import read
from kit.errors import KitError
from kit.linux import newmount, process
from kit.linux.flags import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    PR_SET_DUMPABLE,
)
from kit.linux.mount import mount
from kit.linux.namespaces import unshare
from kit.linux.syscall import quote, traced
from kit.trace import Event, tracer

#: In a probe child's private mount namespace a tmpfs covers this directory, so test mounts
#: and their files never touch the host's disk.
SCRATCH = "/tmp"

#: Namespace kinds: (name in /proc/self/ns, clone flag, kernel config option).
NAMESPACE_KINDS: dict[str, tuple[str, int, str]] = {
    "mount": ("mnt", CLONE_NEWNS, "always built in"),
    "pid": ("pid", CLONE_NEWPID, "CONFIG_PID_NS"),
    "uts": ("uts", CLONE_NEWUTS, "CONFIG_UTS_NS"),
    "ipc": ("ipc", CLONE_NEWIPC, "CONFIG_IPC_NS"),
    "network": ("net", CLONE_NEWNET, "CONFIG_NET_NS"),
    "cgroup": ("cgroup", CLONE_NEWCGROUP, "CONFIG_CGROUPS"),
    "user": ("user", CLONE_NEWUSER, "CONFIG_USER_NS"),
    "time": ("time", CLONE_NEWTIME, "CONFIG_TIME_NS"),
}

#: A container needs these; the others make some lessons unavailable.
REQUIRED_NAMESPACES = ("mount", "pid", "uts", "ipc", "network")

PROBE_TIMEOUT = 60.0


def _failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, KitError):
        return {"ok": False, "errno": exc.errno, "error": str(exc)}
    if isinstance(exc, OSError):
        return {"ok": False, "errno": exc.errno, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": False, "errno": None, "error": f"{type(exc).__name__}: {exc}"}


def _step(results: dict[str, Any], name: str, action: Callable[[], dict[str, Any] | None]) -> bool:
    """Run one attempt; record ``{"ok": True, ...}`` or the failure. Returns success."""
    try:
        extra = action() or {}
    except Exception as exc:
        results[name] = _failure(exc)
        return False
    results[name] = {"ok": True, **extra}
    return True


def _in_child(action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``action`` in a forked child; return its result and the events it emitted.

    Only called inside the probe interpreter, which is single-threaded, so fork is safe. The
    child's namespaces, mounts and credentials die with it.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            os.close(read_end)
            tracer().reset()
            with tracer().capture() as events:
                try:
                    result = action()
                except BaseException as exc:
                    result = _failure(exc)
            payload = json.dumps(
                {"result": result, "events": [asdict(e) for e in events]}, default=str
            ).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    _, wait_status = os.waitpid(pid, 0)
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        code = os.waitstatus_to_exitcode(wait_status)
        return {"ok": False, "errno": None, "error": f"probe child died ({code})"}, []
    return data["result"], data["events"]


def _write_proc(path: str, text: str) -> None:
    def write() -> None:
        with open(path, "w") as f:
            f.write(text)

    traced("write", [quote(path), quote(text)], write, context={"path": path})


def _enter_userns(uid: int, gid: int) -> None:
    """unshare(CLONE_NEWUSER) and map ``uid``/``gid`` to root inside, as rootless kit does."""
    unshare(CLONE_NEWUSER)
    _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"0 {uid} 1")
    _write_proc("/proc/self/gid_map", f"0 {gid} 1")


def _private_scratch() -> None:
    """Make every mount private, then cover SCRATCH with a tmpfs (this namespace only).

    Everything the probes use is imported at the top of this module (see the module doc).
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE, note="nothing below may propagate to the host")
    mount(
        "kit-doctor",
        SCRATCH,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        "mode=0755",
        note="scratch space that vanishes with this mount namespace",
    )


def _layers(name: str) -> dict[str, str]:
    """Two lower layers with files, and empty upper/work/merged directories."""
    base = os.path.join(SCRATCH, name)
    paths = {
        key: os.path.join(base, key) for key in ("lower1", "lower2", "upper", "work", "merged")
    }
    for path in paths.values():
        os.makedirs(path)
    os.makedirs(os.path.join(paths["lower1"], "dir"))
    Path(paths["lower1"], "dir", "inside").write_text("lower1\n")
    Path(paths["lower1"], "from-lower1").write_text("lower1\n")
    Path(paths["lower2"], "from-lower2").write_text("lower2\n")
    return paths


def _sees_both_layers(merged: str) -> dict[str, Any]:
    names = sorted(os.listdir(merged))
    if not {"from-lower1", "from-lower2"} <= set(names):
        raise KitError(
            "the overlay mounted but does not show both lower layers",
            cause=f"the merged directory holds {names}",
            fix="report this kernel's behaviour; kit expects the union of the layers",
        )
    return {"merged": names}


def _probe_overlay_classic(userxattr: bool = False) -> dict[str, Any]:
    """mount(2) an overlay; check the union, copy-up and a whiteout."""
    p = _layers("classic-userxattr" if userxattr else "classic")
    data = f"lowerdir={p['lower1']}:{p['lower2']},upperdir={p['upper']},workdir={p['work']}"
    if userxattr:
        data += ",userxattr"
    mount("overlay", p["merged"], "overlay", 0, data, note="doctor: a real overlay mount")
    seen = _sees_both_layers(p["merged"])
    Path(p["merged"], "written").write_text("new\n")
    os.unlink(os.path.join(p["merged"], "from-lower1"))
    whiteout = os.lstat(os.path.join(p["upper"], "from-lower1"))
    is_whiteout = stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    result: dict[str, Any] = {
        **seen,
        "copy_up": os.path.exists(os.path.join(p["upper"], "written")),
        "whiteout": "char 0/0" if is_whiteout else stat.filemode(whiteout.st_mode),
    }
    if userxattr:
        # Replacing a lower directory makes an opaque directory in upper; with userxattr the
        # kernel marks it with user.overlay.opaque instead of trusted.overlay.opaque.
        shutil.rmtree(os.path.join(p["merged"], "dir"))
        os.mkdir(os.path.join(p["merged"], "dir"))
        names = os.listxattr(os.path.join(p["upper"], "dir"))
        result["opaque_xattrs"] = sorted(names)
        result["verified"] = "user.overlay.opaque" in names
    return result


def _probe_overlay_lowerdir_plus(userxattr: bool = False) -> dict[str, Any]:
    """Build an overlay with the new mount API, adding each layer with ``lowerdir+``."""
    p = _layers("lowerdir-plus")
    fd = newmount.fsopen("overlay")
    try:
        newmount.set_string(fd, "lowerdir+", p["lower1"])
        newmount.set_string(fd, "lowerdir+", p["lower2"])
        newmount.set_string(fd, "upperdir", p["upper"])
        newmount.set_string(fd, "workdir", p["work"])
        if userxattr:
            newmount.set_flag(fd, "userxattr")
        newmount.create(fd)
        mount_fd = newmount.fsmount(fd)
    finally:
        os.close(fd)
    try:
        newmount.attach(mount_fd, p["merged"], note="doctor: overlay built layer by layer")
    finally:
        os.close(mount_fd)
    return _sees_both_layers(p["merged"])


def _probe_overlay() -> dict[str, Any]:
    """Everything about overlayfs, as root in a private mount namespace."""
    results: dict[str, Any] = {}
    unshare(CLONE_NEWNS)
    _private_scratch()
    _step(results, "mount", _probe_overlay_classic)
    _step(results, "userxattr", lambda: _probe_overlay_classic(userxattr=True))
    _step(results, "lowerdir+", _probe_overlay_lowerdir_plus)
    return results


def _probe_userns(uid: int, gid: int, switch: bool) -> dict[str, Any]:
    """Create a user namespace as ``uid`` (switching to it first when ``switch``), then try
    what rootless kit does in it: map ids, mount a tmpfs, mount an overlay with userxattr."""
    results: dict[str, Any] = {"uid": uid, "gid": gid}
    if switch:
        process.setgroups([])
        process.setresgid(gid)
        process.setresuid(uid)
        # setuid made us non-dumpable, which makes /proc/self/* root's; undo that so this
        # process may write its own uid_map, like any process a user starts.
        process.prctl(PR_SET_DUMPABLE, 1)
    if not _step(results, "unshare", lambda: _enter_userns(uid, gid)):
        return results

    def mount_in_userns() -> None:
        unshare(CLONE_NEWNS)
        _private_scratch()

    if _step(results, "mount", mount_in_userns):
        _step(results, "overlay", lambda: _probe_overlay_classic(userxattr=True))
        _step(results, "overlay lowerdir+", lambda: _probe_overlay_lowerdir_plus(userxattr=True))
    return results


def _probe_namespace(flag: int) -> dict[str, Any]:
    if os.geteuid() != 0 and flag != CLONE_NEWUSER:
        flag |= CLONE_NEWUSER  # without root, every other namespace needs a user namespace
    unshare(flag)
    return {"ok": True}


def _probe_securityfs() -> dict[str, Any]:
    """Mount securityfs privately to read the active LSM list when the host has not."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount(
        "securityfs",
        "/sys/kernel/security",
        "securityfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        note="doctor: read the LSM list",
    )
    text = read("/sys/kernel/security/lsm")
    return {
        "ok": text is not None,
        "lsm": (text or "").strip(),
        "apparmor": os.path.isdir("/sys/kernel/security/apparmor"),
    }


def _unprivileged_ids() -> tuple[int, int, str]:
    """Whose rootless experience to test when running as root: the sudo user, else nobody."""
    try:
        uid = int(os.environ.get("SUDO_UID", ""))
        gid = int(os.environ.get("SUDO_GID", ""))
        if uid > 0:
            return uid, gid, os.environ.get("SUDO_USER", str(uid))
    except ValueError:
        pass
    return 65534, 65534, "nobody"


def run_probes(which: str = "all") -> dict[str, Any]:
    """Make the real attempts (in this process's forked children). Probe-interpreter only.

    Returns ``{"results": {...}, "events": [...]}``; see :func:`probe` for the caller side.
    """
    results: dict[str, Any] = {}
    events: list[dict[str, Any]] = []

    def child(name: str, action: Callable[[], dict[str, Any]], title: str) -> None:
        def announced() -> dict[str, Any]:
            tracer().info(f"doctor probe: {title}")
            return action()

        results[name], emitted = _in_child(announced)
        events.extend(emitted)

    root = os.geteuid() == 0
    if which in ("all", "userns"):
        uid, gid = os.geteuid(), os.getegid()
        child(
            "userns_self",
            lambda: _probe_userns(uid, gid, switch=False),
            f"a user namespace as this user (uid {uid})",
        )
        if root:
            uid, gid, user = _unprivileged_ids()
            child(
                "userns_unprivileged",
                lambda: _probe_userns(uid, gid, switch=True),
                f"a user namespace as {user} (uid {uid}), what rootless students get",
            )
            results["userns_unprivileged"]["user"] = user
    if which in ("all", "namespaces"):
        for kind, (_, flag, _) in NAMESPACE_KINDS.items():
            child(f"ns_{kind}", lambda flag=flag: _probe_namespace(flag), f"a {kind} namespace")
    if which in ("all", "overlay") and root:
        child("overlay", _probe_overlay, "overlay mounts in a private mount namespace")
    if (
        which in ("all", "lsm")
        and root
        and read("/sys/kernel/security/lsm") is None
        and os.path.isdir("/sys/kernel/security")
    ):
        child("securityfs", _probe_securityfs, "the LSM list from a private securityfs")
    return {"results": results, "events": events}


def probe(which: str = "all", timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """Run the probe in a fresh interpreter and return its results.

    A fresh interpreter because the caller may have threads (the TUI), where fork is unsafe and
    unshare(CLONE_NEWUSER) fails with EINVAL. The probe's system calls are re-emitted on this
    process's tracer, so ``--trace`` and the TUI's syscall log show them.
    """
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "kit.doctor", "--probe", which]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the probe ({' '.join(command)}) did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"the probe exited with {done.returncode}: {' / '.join(tail)}"}
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return {"error": f"the probe wrote no JSON: {done.stdout[:200]!r}"}
    log = tracer()
    if log.active:
        for raw in data.get("events", []):
            try:
                log.emit(Event(**raw))
            except TypeError:
                continue
    return data.get("results", {})


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.doctor --probe WHICH``: make the attempts, print the results as JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit.doctor")
    parser.add_argument(
        "--probe",
        required=True,
        choices=("all", "userns", "namespaces", "overlay", "lsm"),
        help="make the real attempts and print their results as JSON",
    )
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(run_probes(args.probe), default=str) + "\n")
    return 0
