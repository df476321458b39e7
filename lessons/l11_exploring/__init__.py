"""Lesson 11: Exploring a running container.

One container from the lesson's image (its writable layer in the workspace) is explored from
outside the ways engines do it: ``kit exec`` (every namespace, the cgroup and the security
settings) against an ``nsenter``-like join (namespaces only), the container's files through
``/proc/PID/root`` (and the symlink trap there), ``kit cp`` in and out (resolved inside the
container's root), ``kit export`` to a tar read offline, and the writable layer as a diff.
Checks read ``/proc/PID/{ns,status,root}`` of the processes, the container's files, the tar
in the workspace, and the writable layer on disk.
"""

from __future__ import annotations

import os
import subprocess
import tarfile

from kit.layers_view import container_diff, diff_lines
from kit.runtime.copy import copy_into, copy_out_of
from kit.runtime.exec import ExecProcess, Target
from kit.runtime.export import write_tree
from kit.runtime.processes import namespace_members
from kit.runtime.rootview import open_process_root
from kit.runtime.state import process_start_time
from lessons import imaging, kernel
from lessons.context import StepContext
from lessons.model import Lesson, Question, Step, Verdict
from lessons.observe import Facts, Output

BOX, ENTERED = "box", "entered"
#: What the exec'd process runs (busybox's sleep), so checks can find it.
EXECD = ("sleep", "3600")
NOTE = "kit-lesson11-note.txt"
NS = ("mnt", "pid", "net", "uts", "ipc", "cgroup")
SECURITY = ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp")


def _box(ctx: StepContext) -> int:
    """The container, started from the lesson's image if it is not running."""
    pid = ctx.pid(BOX)
    if pid is None:
        demo = imaging.ready_image(ctx)
        imaging.start(ctx, BOX, demo)
        pid = ctx.pid(BOX)
    assert pid is not None
    return pid


def _execd(pid: int) -> int | None:
    """The exec'd process in the container's PID namespace (by its command line)."""
    for member in namespace_members(pid):
        if member != pid and kernel.read_text(f"/proc/{member}/cmdline") == "\0".join(EXECD) + "\0":
            return member
    return None


# --- 1. kit exec ---


def execute(ctx: StepContext) -> None:
    pid = _box(ctx)
    box = ctx.container(BOX)
    spec = box.spec.__class__.from_dict(box.spec.to_dict())  # a copy of the container's spec
    spec.process.args = list(EXECD)
    spec.kit.probe = None
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        joined = ExecProcess(
            spec,
            Target(pid, process_start_time(pid) or 0),
            stdin=null,
            stdout=null,
            stderr=null,
            detach=True,  # the joiner leaves once the program runs; the program stays
            on_event=ctx.emit,
        )
        joined.start()
        status = joined.wait()
        joined.close()
    finally:
        os.close(null)
    if status.error is not None:
        raise status.error
    calls = [e.format(with_stage=False) for e in joined.events if e.kind == "syscall"]
    ctx.show(Output("the joiner's system calls (kit exec --trace)", "\n".join(calls[:12])))
    execd = _execd(pid)
    if execd is not None:
        theirs, mine = kernel.status(pid), kernel.status(execd)
        inside = mine.get("NSpid", "").split()
        rows = [("PID on the host / inside", f"{execd} / {inside[-1] if inside else '?'}")]
        for name in NS:
            same = kernel.namespaces_of(execd).get(name) == kernel.namespaces_of(pid).get(name)
            rows.append((f"{name} namespace", "the container's" if same else "different!"))
        for field in SECURITY:
            rows.append((field, f"{mine.get(field)} (PID 1: {theirs.get(field)})"))
        ctx.show(Facts(f"the exec'd `{' '.join(EXECD)}` against the container's PID 1", rows))


def check_execute(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOX)
    if pid is None:
        return Verdict.no("the container is not running: run the step")
    execd = _execd(pid)
    if execd is None:
        return Verdict.no(f"no `{' '.join(EXECD)}` runs in the container's PID namespace")
    theirs, mine = kernel.namespaces_of(pid), kernel.namespaces_of(execd)
    different = [n for n in NS if theirs.get(n) != mine.get(n)]
    if different:
        return Verdict.no(f"the exec'd process is outside the container's {', '.join(different)}")
    unlike = [f for f in SECURITY if kernel.status(pid).get(f) != kernel.status(execd).get(f)]
    if unlike:
        return Verdict.no(f"the exec'd process differs from PID 1 in {', '.join(unlike)}")
    return Verdict.ok("same namespaces, capabilities, no_new_privs and seccomp mode as PID 1")


# --- 2. nsenter joins namespaces only ---


def enter(ctx: StepContext) -> None:
    pid = _box(ctx)
    result = ctx.experiment("kit.probes.enter:join_namespaces", keep=ENTERED, shell=False, pid=pid)
    entered = ctx.pid(ENTERED)
    rows = []
    execd = _execd(pid)
    for field in SECURITY:
        row = f"nsenter-like: {result['status'].get(field)}"
        if execd is not None:
            row += f"   kit exec: {kernel.status(execd).get(field)}"
        rows.append((field, row))
    if entered is not None:
        same = [
            n
            for n in ("mnt", "net", "uts", "ipc")
            if kernel.namespaces_of(entered).get(n) == kernel.namespaces_of(pid).get(n)
        ]
        rows.insert(0, ("namespaces joined", ", ".join(same)))
    ctx.show(Facts("a process that only joined the namespaces", rows))
    real = subprocess.run(
        [
            "nsenter",
            f"--target={pid}",
            "--all",
            "--root",
            "--",
            "/bin/sh",
            "-c",
            "grep -e CapEff -e Seccomp /proc/self/status",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    ctx.show(
        Output(
            "nsenter --target PID --all: the same, with util-linux's tool",
            real.stdout + real.stderr,
        )
    )


def check_enter(ctx: StepContext) -> Verdict:
    pid, entered = ctx.pid(BOX), ctx.pid(ENTERED)
    if pid is None or entered is None:
        return Verdict.no("the container or the entered process is not running: run the step")
    theirs, mine = kernel.namespaces_of(pid), kernel.namespaces_of(entered)
    if any(theirs.get(n) != mine.get(n) for n in ("mnt", "net", "uts", "ipc")):
        return Verdict.no("the entered process is not in the container's namespaces")
    if kernel.status(entered).get("Seccomp") == kernel.status(pid).get("Seccomp"):
        return Verdict.no("the entered process has the container's seccomp mode")
    return Verdict.ok(
        f"in the container's namespaces, yet Seccomp {kernel.status(entered).get('Seccomp')} "
        f"(the container: {kernel.status(pid).get('Seccomp')}) and the host's capabilities"
    )


# --- 3. /proc/PID/root ---


def proc_root(ctx: StepContext) -> None:
    pid = _box(ctx)
    ctx.output_of(BOX, "echo written inside > /tmp/marker; busybox ln -sf /etc/motd /tmp/motd-link")
    root = f"/proc/{pid}/root"
    via_path = kernel.read_text(f"{root}/tmp/motd-link")
    with open_process_root(pid) as view:
        from kit.linux.flags import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS
        from kit.linux.fs import openat2

        fd = openat2(
            view.fd,
            "tmp/motd-link",
            os.O_RDONLY | os.O_CLOEXEC,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
        with os.fdopen(fd) as f:
            in_root = f.read()
    ctx.show(
        Facts(
            "reading the container's files from the host",
            [
                (f"{root}/tmp/marker", (kernel.read_text(f"{root}/tmp/marker") or "?").strip()),
                (
                    f"{root}/tmp/motd-link (a path)",
                    (via_path or "(no such file on the host)").strip()[:60],
                ),
                ("openat2(root, tmp/motd-link, RESOLVE_IN_ROOT)", in_root.strip()),
            ],
        )
    )


def check_proc_root(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOX)
    if pid is None:
        return Verdict.no("the container is not running")
    root = f"/proc/{pid}/root"
    if (kernel.read_text(f"{root}/tmp/marker") or "").strip() != "written inside":
        return Verdict.no("the container has no /tmp/marker")
    try:
        target = os.readlink(f"{root}/tmp/motd-link")
    except OSError:
        return Verdict.no("the container has no /tmp/motd-link symlink")
    return Verdict.ok(f"/tmp/marker read through {root}; /tmp/motd-link -> {target}")


# --- 4. kit cp ---


def copy(ctx: StepContext) -> None:
    pid = _box(ctx)
    ctx.output_of(BOX, "rm -f /tmp/etc-link; busybox ln -s /etc /tmp/etc-link")
    source = ctx.workspace / NOTE
    source.write_text("copied in from the host\n")
    out = ctx.workspace / "copied-motd"
    with open_process_root(pid) as view:
        copy_into(view, str(source), "/tmp/etc-link/")  # the link, resolved in the container
        out.unlink(missing_ok=True)
        copy_out_of(view, "/etc/motd", str(out))
    ctx.show(
        Facts(
            "kit cp, both ways",
            [
                (
                    f"in: {NOTE} -> /tmp/etc-link/",
                    f"the container's /etc/{NOTE}: "
                    f"{'exists' if os.path.exists(f'/proc/{pid}/root/etc/{NOTE}') else 'missing'}",
                ),
                (
                    f"the host's /etc/{NOTE}",
                    "exists!" if os.path.exists(f"/etc/{NOTE}") else "does not exist",
                ),
                ("out: /etc/motd ->", f"{out.name}: {out.read_text().strip()}"),
            ],
        )
    )


def check_copy(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOX)
    if pid is None:
        return Verdict.no("the container is not running")
    inside = kernel.read_text(f"/proc/{pid}/root/etc/{NOTE}")
    if inside != "copied in from the host\n":
        return Verdict.no(f"the container has no /etc/{NOTE} with the copied text")
    if os.path.exists(f"/etc/{NOTE}"):
        return Verdict.no(f"/etc/{NOTE} exists on the host!")
    copied = ctx.workspace / "copied-motd"
    if not copied.is_file() or copied.read_text() != kernel.read_text(f"/proc/{pid}/root/etc/motd"):
        return Verdict.no("the workspace has no copy of the container's /etc/motd")
    return Verdict.ok("in: through the container's own /tmp/etc-link to its /etc; out: its motd")


# --- 5. kit export ---


def export(ctx: StepContext) -> None:
    pid = _box(ctx)
    archive = ctx.workspace / "box.tar"
    with open_process_root(pid, whole_tree=False) as view, open(archive, "wb") as out:
        stats = write_tree(view.fd, out)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        motd = tar.extractfile("etc/motd")
        text = motd.read().decode().strip() if motd else "?"
    ctx.show(
        Facts(
            f"box.tar, read offline ({stats.entries} entries, {stats.bytes} bytes of files)",
            [
                ("etc/motd", text),
                (
                    "under proc/, sys/, dev/, tmp/",
                    str(sum(n.startswith(("proc/", "sys/", "dev/", "tmp/")) for n in names)),
                ),
                (f"etc/{NOTE}", "present" if f"etc/{NOTE}" in names else "absent"),
            ],
        )
    )


def check_export(ctx: StepContext) -> Verdict:
    archive = ctx.workspace / "box.tar"
    if not archive.is_file():
        return Verdict.no("there is no box.tar in the workspace")
    try:
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
    except tarfile.TarError as error:
        return Verdict.no(f"box.tar is not a tar archive: {error}")
    if "bin/busybox" not in names or "etc/motd" not in names:
        return Verdict.no("box.tar lacks the container's files")
    if any(n.startswith(("proc/", "sys/")) for n in names):
        return Verdict.no("box.tar contains /proc or /sys contents")
    return Verdict.ok(
        f"{len(names)} entries: the container's files, none of its kernel filesystems"
    )


# --- 6. the diff ---


def diff(ctx: StepContext) -> None:
    _box(ctx)
    ctx.output_of(BOX, "rm -f /etc/motd; echo changed > /srv/hello.txt; mkdir -p /srv/new")
    demo = imaging.image(ctx)
    assert demo is not None
    found = container_diff(imaging.layer_dir(ctx, BOX) / "upper", demo.layer_dirs())
    ctx.show(Output("kit diff box (A added, C changed, D deleted)", "\n".join(diff_lines(found))))


def check_diff(ctx: StepContext) -> Verdict:
    upper = imaging.layer_dir(ctx, BOX) / "upper"
    if ctx.pid(BOX) is None or not upper.is_dir():
        return Verdict.no("the container is not running")
    motd = upper / "etc" / "motd"
    try:
        st = os.lstat(motd)
    except FileNotFoundError:
        return Verdict.no("no whiteout for /etc/motd in the writable layer")
    if not (
        os.major(st.st_rdev) == 0
        and os.minor(st.st_rdev) == 0
        and (st.st_mode & 0o170000) == 0o020000
    ):
        return Verdict.no("etc/motd in the writable layer is not a whiteout")
    hello = kernel.read_text(upper / "srv" / "hello.txt")
    if hello != "changed\n":
        return Verdict.no("/srv/hello.txt was not changed in the writable layer")
    return Verdict.ok("a whiteout for etc/motd, a copied-up srv/hello.txt, a new srv/new")


LESSON = Lesson(
    id="exploring",
    number=11,
    title="Exploring a running container",
    goals=(
        "kit exec joins every namespace, the cgroup and the security of a container",
        "nsenter joins the namespaces and nothing else",
        "/proc/PID/root shows a container's files, but paths there resolve against the host",
        "kit cp resolves paths inside the container; kit export gives its files as a tar",
        "A container's diff is its writable layer",
    ),
    package=__name__,
    requires=("root", "seccomp"),
    steps=(
        Step(
            "exec",
            "kit exec: one more process in the container",
            execute,
            check_execute,
            question=Question(
                "kit exec starts `sleep` in the running container. Which PID does it have "
                "inside the container?",
                ("1, like every container's program", "a new PID above 1", "its host PID"),
                1,
                "PID 1 is taken by the container's own program. setns(2) into a PID namespace "
                "affects only the children of the caller, so kit forks after joining: the child "
                "gets the next free PID of the container's namespace.",
            ),
        ),
        Step(
            "nsenter",
            "nsenter joins namespaces, not the rest",
            enter,
            check_enter,
            question=Question(
                "A process joins all the container's namespaces with setns(2), as nsenter does. "
                "Is it held by the container's seccomp filter?",
                ("yes: the filter belongs to the namespaces", "no: it keeps its own"),
                1,
                "A seccomp filter, capabilities and no_new_privs belong to a process and are "
                "inherited by its children; no namespace carries them. kit exec applies them "
                "again, by running the init's own stages in the new process.",
            ),
        ),
        Step(
            "proc-root",
            "/proc/PID/root, and the symlink trap",
            proc_root,
            check_proc_root,
            question=Question(
                "From the host you open /proc/PID/root/tmp/motd-link, a symlink to /etc/motd "
                "inside the container. Whose motd do you read?",
                ("the container's", "the host's", "neither: the open fails"),
                1,
                "/proc/PID/root leads into the container's root, but an absolute symlink met "
                "on the way restarts at *your* root, the host's. Only openat2 with "
                "RESOLVE_IN_ROOT keeps the lookup inside.",
            ),
        ),
        Step("cp", "kit cp in and out", copy, check_copy),
        Step("export", "kit export, read offline", export, check_export),
        Step("diff", "What the container changed", diff, check_diff),
    ),
)
