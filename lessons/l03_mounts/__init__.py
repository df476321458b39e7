"""Lesson 3: mount namespaces and the kernel filesystems.

First, propagation, on a mount point the lesson owns (never the host's ``/``): a small tmpfs in
the scratch directory is made *shared*, and a child process in a new mount namespace mounts
below it, once with its copy left shared (the mount appears on the host) and once after making
its copy private (it does not). Then a real container is single-stepped: paused after
``namespaces`` (its mount table is a copy of the host's), after ``propagation`` (every copied
mount turned private), after ``kernel-filesystems`` (a new /proc, /dev, /sys read-only) and
after ``devices``. The challenge: a container was started without /proc; mount it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kit import mounts
from kit.runtime.launcher import Pause
from kit.security.capabilities import DEFAULT_CAPABILITIES, container_capabilities
from kit.security.seccomp_default import resolved_default_profile
from lessons import kernel
from lessons.context import StepContext
from lessons.live import LiveContainer
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountChange, MountList, Namespaces, Tree

SHARED_DIR = "propagation"
LEAK = "leak"
KEPT = "kept"
PRIVATE_COPY = "private-copy"
STAGES = "stages"
NOPROC = "no-proc"
PAUSES = ("namespaces", "propagation", "kernel-filesystems", "devices")
DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}


def _shared(ctx: StepContext) -> Path:
    return ctx.workspace / SHARED_DIR


def _ours(table: list[mounts.Mount], ctx: StepContext) -> list[mounts.Mount]:
    base = str(_shared(ctx))
    return [m for m in table if kernel.under(m.mount_point, base)]


def _stages(ctx: StepContext) -> LiveContainer | None:
    box = ctx.find(STAGES)
    if isinstance(box, LiveContainer) and kernel.alive(box.host_pid):
        return box
    return None


def _paused_after(ctx: StepContext, stage: str) -> LiveContainer | None:
    """The single-stepped container, if it has got at least as far as ``stage``."""
    box = _stages(ctx)
    if box is None or box.pause is None:
        return None
    if PAUSES.index(box.pause.stage) < PAUSES.index(stage):
        return None
    return box


# --- 1. shared: a mount leaks -----------------------------------------------------------------


def shared(ctx: StepContext) -> None:
    where = _shared(ctx)
    if not any(m.mount_point == str(where) for m in mounts.read()):
        ctx.experiment("kit.probes.propagation:make_shared_tmpfs", path=str(where))
    before = mounts.read()
    ctx.show(MountList("the lesson's shared mount point, on the host", _ours(before, ctx)))
    result = ctx.experiment(
        "kit.probes.propagation:mount_below", shared=str(where), name=LEAK, make_private=False
    )
    after = mounts.read()
    ctx.show(
        MountChange(
            "the host's mount table, after the child mounted and exited", mounts.diff(before, after)
        )
    )
    ctx.say(f"the child (mount namespace {result['mnt']}) has exited; its mount stayed on the host")


def check_shared(ctx: StepContext) -> Verdict:
    table = mounts.read()
    target = str(_shared(ctx) / LEAK)
    leaked = mounts.find(table, target)
    if leaked is None:
        return Verdict.no(f"nothing is mounted at {target} on the host")
    return Verdict.ok(
        f"{target} ({leaked.fstype}) is in the host's mount table, mounted by another namespace"
    )


# --- 2. private: it does not ------------------------------------------------------------------


def private(ctx: StepContext) -> None:
    where = _shared(ctx)
    before = mounts.read()
    result = ctx.experiment(
        "kit.probes.propagation:mount_below",
        keep=PRIVATE_COPY,
        shared=str(where),
        name=KEPT,
        make_private=True,
    )
    pid = ctx.pid(PRIVATE_COPY)
    assert pid is not None
    ctx.show(
        MountList("in the child's namespace (it is still running)", _ours(mounts.read(pid), ctx))
    )
    ctx.show(MountChange("the host's mount table meanwhile", mounts.diff(before, mounts.read())))
    ctx.say(f"the child's namespace {result['mnt']} has {KEPT}; the host does not")


def check_private(ctx: StepContext) -> Verdict:
    pid = ctx.pid(PRIVATE_COPY)
    if pid is None:
        return Verdict.no("the child with a private copy is not running")
    target = str(_shared(ctx) / KEPT)
    if mounts.find(mounts.read(pid), target) is None:
        return Verdict.no(f"the child has nothing mounted at {target}")
    if mounts.find(mounts.read(), target) is not None:
        return Verdict.no(f"{target} reached the host")
    return Verdict.ok(f"{target} exists only in the child's namespace")


# --- 3. a container's namespace starts as a copy ----------------------------------------------


def copy(ctx: StepContext) -> None:
    box = ctx.start(STAGES, ctx.spec(), pauses=PAUSES)
    assert box.pause is not None and box.host_pid is not None
    ctx.show(
        Namespaces(
            "namespaces: container (paused after namespaces) vs host",
            ctx.namespaces(STAGES),
            ctx.namespaces(),
        )
    )
    ctx.show(
        Facts(
            "mount tables",
            [
                ("host", f"{len(mounts.read())} mounts"),
                ("container", f"{len(box.pause.mounts)} mounts"),
                (
                    "difference",
                    "none: a copy"
                    if box.pause.diff.empty
                    else f"{len(box.pause.diff.lines())} lines",
                ),
            ],
        )
    )
    ctx.show(
        MountList(
            "the container's copy of the lesson's shared mounts", _ours(box.pause.mounts, ctx)
        )
    )


def check_copy(ctx: StepContext) -> Verdict:
    box = _stages(ctx)
    if box is None or box.host_pid is None:
        return Verdict.no("no single-stepped container is running")
    if "mnt" not in kernel.new_namespaces(box.host_pid):
        return Verdict.no("the container shares the host's mount namespace")
    theirs = {m.mount_point for m in mounts.read(box.host_pid)}
    missing = {m.mount_point for m in mounts.read()} - theirs
    if missing and box.pause is not None and box.pause.stage == "namespaces":
        return Verdict.no(f"the copy lacks {', '.join(sorted(missing))}")
    return Verdict.ok(
        f"PID {box.host_pid} has a mount namespace of its own, copied from the host's"
    )


# --- 4. kit's propagation stage ---------------------------------------------------------------


def propagation(ctx: StepContext) -> None:
    box = ctx.container(STAGES)
    pause = box.advance_to("propagation")
    ctx.show(MountChange("what the propagation stage changed", pause.diff))


def check_propagation(ctx: StepContext) -> Verdict:
    box = _paused_after(ctx, "propagation")
    if box is None or box.host_pid is None:
        return Verdict.no("the container has not run its propagation stage yet")
    shared_inside = [m.mount_point for m in mounts.read(box.host_pid) if m.propagation != "private"]
    if shared_inside:
        return Verdict.no(f"still connected: {', '.join(shared_inside)}")
    host = mounts.find(mounts.read(), str(_shared(ctx)))
    tail = f"; the host's {SHARED_DIR} is still {host.propagation}" if host else ""
    return Verdict.ok("every mount in the container's namespace is private" + tail)


# --- 5. kernel filesystems --------------------------------------------------------------------


def _rootfs(box: LiveContainer) -> str:
    return box.spec.root.path


def kernel_filesystems(ctx: StepContext) -> None:
    box = ctx.container(STAGES)
    pause = box.advance_to("kernel-filesystems")
    pid = box.host_pid
    root = _rootfs(box)
    ctx.show(MountChange("what the kernel-filesystems stage mounted", pause.diff))
    new_proc = kernel.numeric_entries(f"/proc/{pid}/root{root}/proc")
    old_proc = kernel.numeric_entries(f"/proc/{pid}/root/proc")
    ctx.show(
        Facts(
            "two /proc in one mount namespace",
            [
                ("the copied host /proc lists", f"{len(old_proc)} processes"),
                (f"the new {root}/proc lists", f"{len(new_proc)}: {new_proc}"),
            ],
        )
    )


def check_kernel_filesystems(ctx: StepContext) -> Verdict:
    box = _paused_after(ctx, "kernel-filesystems")
    if box is None or box.host_pid is None:
        return Verdict.no("the container has not mounted its kernel filesystems yet")
    root = _rootfs(box)
    table = mounts.read(box.host_pid)
    proc = mounts.find(table, f"{root}/proc")
    if proc is None or proc.fstype != "proc":
        return Verdict.no(f"no proc at {root}/proc")
    listed = kernel.numeric_entries(f"/proc/{box.host_pid}/root{root}/proc")
    if 1 not in listed or len(listed) >= len(kernel.numeric_entries("/proc")):
        return Verdict.no("the new /proc does not show the container's own PID namespace")
    sys_mount = mounts.find(table, f"{root}/sys")
    if sys_mount is None or not sys_mount.read_only:
        return Verdict.no(f"{root}/sys is not a read-only sysfs")
    return Verdict.ok(
        f"a /proc of the container's PID namespace ({len(listed)} process), /sys read-only"
    )


# --- 6. devices -------------------------------------------------------------------------------


def devices(ctx: StepContext) -> None:
    box = ctx.container(STAGES)
    pause: Pause = box.advance_to("devices")
    root = _rootfs(box)
    ctx.show(
        Tree.of(
            "the container's /dev (a tmpfs)",
            f"/proc/{box.host_pid}/root{root}/dev",
            depth=1,
            name="/dev",
        )
    )
    ctx.show(MountChange("what the devices stage changed in the mount table", pause.diff))


def check_devices(ctx: StepContext) -> Verdict:
    box = _paused_after(ctx, "devices")
    if box is None or box.host_pid is None:
        return Verdict.no("the container has not created its devices yet")
    dev = f"/proc/{box.host_pid}/root{_rootfs(box)}/dev"
    for name, (major, minor) in DEVICES.items():
        try:
            st = os.lstat(f"{dev}/{name}")
        except FileNotFoundError:
            return Verdict.no(f"/dev/{name} is missing")
        if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (
            major,
            minor,
        ):
            return Verdict.no(f"/dev/{name} is not the character device {major},{minor}")
    return Verdict.ok(f"{len(DEVICES)} device nodes in the container's own /dev tmpfs")


# --- 7. challenge: make /proc visible ---------------------------------------------------------


def no_proc(ctx: StepContext) -> None:
    spec = ctx.spec(hostname="no-proc")
    # Mounting needs CAP_SYS_ADMIN, which containers do not get by default (and kit's default
    # seccomp profile allows mount(2) only with it). The learner's shell is confined exactly
    # like the container, so this container is given it, as `kit run --cap-add SYS_ADMIN`
    # would give it: the capability, and the profile made for that capability list.
    granted = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]
    spec.process.capabilities = container_capabilities(granted)
    spec.linux.seccomp = resolved_default_profile(granted)
    ctx.start(NOPROC, spec)
    # Then its /proc (and the masked paths mounted inside it) is taken away, from inside.
    ctx.output_of(NOPROC, "umount -R /proc")
    pid = ctx.pid(NOPROC)
    assert pid is not None
    ctx.show(MountList("the container's mount table: no /proc", mounts.read(pid)))
    ctx.say("a container without /proc is running: open a shell in it (s) and fix that")


def check_no_proc(ctx: StepContext) -> Verdict:
    pid = ctx.pid(NOPROC)
    if pid is None:
        return Verdict.no("the challenge's container is not running: run the step first")
    proc = mounts.find(mounts.read(pid), "/proc")
    if proc is None:
        return Verdict.no("nothing is mounted at /proc in the container")
    if proc.fstype != "proc":
        return Verdict.no(f"/proc holds a {proc.fstype}, not a proc filesystem")
    inside = kernel.read_text(f"/proc/{pid}/root/proc/1/comm")
    if inside is None or inside.strip() != kernel.command_name(pid):
        return Verdict.no("/proc is mounted, but PID 1 there is not the container's PID 1")
    return Verdict.ok("the container has a /proc of its own PID namespace")


LESSON = Lesson(
    id="mounts",
    number=3,
    title="Mount namespaces and the kernel filesystems",
    goals=(
        "Mount propagation: when a mount made in one namespace appears in another",
        "A new mount namespace starts as a copy; why runtimes make it private first",
        "Why a new PID namespace needs a new /proc",
        "/dev as a small tmpfs with a few device nodes, /sys read-only",
    ),
    package=__name__,
    steps=(
        Step(
            "shared",
            "Propagation: a mount leaks",
            shared,
            check_shared,
            question=Question(
                "A child process unshares its mount namespace and mounts a tmpfs below the "
                "shared mount point, then exits. Will the host see that tmpfs?",
                ("yes", "no", "only while the child runs"),
                0,
                "The child's copy of a shared mount is a peer of the host's: a mount below it "
                "is propagated to every peer, and the host's copy is independent of the child.",
            ),
        ),
        Step("private", "Propagation: a private copy keeps to itself", private, check_private),
        Step(
            "copy",
            "A container's mount table starts as a copy",
            copy,
            check_copy,
            question=Question(
                "kit has just unshared the container's mount namespace. How many mounts does "
                "it have?",
                ("none", "only /", "the same as the host: a copy"),
                2,
                "unshare(CLONE_NEWNS) copies the caller's whole mount table; the runtime then "
                "reshapes the copy stage by stage.",
            ),
        ),
        Step("propagation", "kit's propagation stage", propagation, check_propagation),
        Step(
            "kernel-filesystems",
            "A /proc of its own, /dev, /sys read-only",
            kernel_filesystems,
            check_kernel_filesystems,
            question=Question(
                "The container mounts a fresh proc filesystem. How many processes will it list?",
                ("as many as the host", "one: the container's PID 1", "none"),
                1,
                "A proc filesystem shows the PID namespace of the process that mounted it. "
                "The container's namespace holds one process so far: kit's init, PID 1.",
            ),
        ),
        Step("devices", "Device nodes", devices, check_devices),
        Challenge(
            "make-proc",
            "Challenge: make /proc visible",
            no_proc,
            check_no_proc,
            hints=(
                "/proc is not a directory of files on a disk: it is a filesystem the kernel "
                "generates. It has to be mounted.",
                "The mount command takes a type, a source and a target: "
                "`mount -t TYPE SOURCE TARGET`. For kernel filesystems the source is a label.",
                "`mount -t proc proc /proc`",
            ),
            solution="mount -t proc proc /proc",
        ),
    ),
)
