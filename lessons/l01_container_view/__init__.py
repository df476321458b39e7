"""Lesson 1: what a container sees.

A container is an ordinary process to which the kernel shows a different world: its own root
directory, hostname, process list and mount table. The lesson starts one container, keeps it
running (``sleep infinity`` as PID 1), and compares each of those views with the host's, from
the host (``/proc/PID/...``) and from inside (commands run in the container). The challenge
asks the learner to find out which program is PID 1 inside a second container.
"""

from __future__ import annotations

import os

from kit import mounts
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountList, Namespaces, Output, Tree

HOSTNAME = "lesson-1"
BOX = "box"
PUZZLE = "puzzle"
#: The challenge container's PID 1: a program the learner has not met in this lesson.
PUZZLE_PROGRAM = ("tail", "-f", "/dev/null")
ANSWER_FILE = "/tmp/pid1"


# --- 1. start ---------------------------------------------------------------------------------


def start(ctx: StepContext) -> None:
    box = ctx.start(BOX, ctx.spec(hostname=HOSTNAME))
    pid = box.host_pid
    assert pid is not None
    ctx.show(Namespaces("namespaces: host vs container", ctx.namespaces(BOX), ctx.namespaces()))
    ctx.show(
        Facts(
            "the container is a process",
            [
                ("host PID", str(pid)),
                ("program", " ".join(box.spec.process.args)),
                ("its parent (kit's init)", str(_parent(pid))),
            ],
        )
    )
    ctx.say(f"A container is running: host PID {pid}, running `sleep infinity`.")


def _parent(pid: int) -> int:
    text = kernel.read_text(f"/proc/{pid}/stat") or ""
    return int(text.rsplit(")", 1)[1].split()[1]) if ")" in text else 0


def check_start(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOX)
    if pid is None:
        return Verdict.no("no container of this lesson is running yet")
    new = kernel.new_namespaces(pid)
    missing = {"mnt", "pid", "uts"} - new
    if missing:
        return Verdict.no(f"the container shares {', '.join(sorted(missing))} with the host")
    return Verdict.ok(f"PID {pid} has its own namespaces: {', '.join(sorted(new))}")


# --- 2. root ----------------------------------------------------------------------------------


def root(ctx: StepContext) -> None:
    pid = ctx.pid(BOX)
    box = ctx.container(BOX)
    ctx.show(
        Tree.of(
            "the container's / (seen through /proc/PID/root)",
            f"/proc/{pid}/root",
            depth=1,
            name="/",
        )
    )
    ctx.show(Output("the host's /", "  ".join(sorted(os.listdir("/")))))
    rootfs = box.spec.root.path
    ctx.show(
        Facts(
            "where the container's / really is",
            [
                ("container root", f"/proc/{pid}/root"),
                ("same directory as", rootfs),
                ("identity (device, inode)", str(kernel.root_of(pid))),
                ("host / identity", str(kernel.host_root())),
            ],
        )
    )


def check_root(ctx: StepContext) -> Verdict:
    box = ctx.find(BOX)
    pid = ctx.pid(BOX)
    if pid is None or box is None:
        return Verdict.no("no container of this lesson is running")
    rootfs = box.spec.root.path  # type: ignore[union-attr]
    if kernel.root_of(pid) == kernel.host_root():
        return Verdict.no("the container's / is the host's /")
    if kernel.root_of(pid) != kernel.identity(rootfs):
        return Verdict.no(f"the container's / is not {rootfs}")
    return Verdict.ok(f"the container's / is {rootfs}, not the host's /")


# --- 3. hostname ------------------------------------------------------------------------------


def hostname(ctx: StepContext) -> None:
    inside = ctx.output_of(BOX, "hostname").strip()
    ctx.show(Facts("hostname", [("host", os.uname().nodename), ("container", inside)]))


def check_hostname(ctx: StepContext) -> Verdict:
    if ctx.pid(BOX) is None:
        return Verdict.no("no container of this lesson is running")
    inside = ctx.output_of(BOX, "hostname").strip()
    if inside != HOSTNAME:
        return Verdict.no(f"the container calls itself {inside!r}")
    if os.uname().nodename == HOSTNAME:
        return Verdict.no("the host has the container's name too")
    return Verdict.ok(f"container: {inside}; host: {os.uname().nodename}")


# --- 4. processes -----------------------------------------------------------------------------


def processes(ctx: StepContext) -> None:
    pid = ctx.pid(BOX)
    ps = ctx.output_of(BOX, "ps -o pid,comm,args")
    inside = kernel.numeric_entries(f"/proc/{pid}/root/proc")
    host = kernel.numeric_entries("/proc")
    ctx.show(Output("ps, run inside the container", ps))
    ctx.show(
        Facts(
            "processes",
            [
                ("the host's /proc lists", f"{len(host)} processes"),
                ("the container's /proc lists", f"{len(inside)}: {inside}"),
                ("container PID 1 is host PID", str(pid)),
            ],
        )
    )


def check_processes(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOX)
    if pid is None:
        return Verdict.no("no container of this lesson is running")
    inside = kernel.numeric_entries(f"/proc/{pid}/root/proc")
    if 1 not in inside:
        return Verdict.no("the container's /proc has no PID 1")
    name_inside = kernel.read_text(f"/proc/{pid}/root/proc/1/comm")
    if name_inside is None or name_inside.strip() != kernel.command_name(pid):
        return Verdict.no("PID 1 inside is not the container's program")
    if len(inside) >= len(kernel.numeric_entries("/proc")):
        return Verdict.no("the container sees as many processes as the host")
    return Verdict.ok(
        f"inside, PID 1 is {name_inside.strip()} (host PID {pid}); {len(inside)} process(es) in all"
    )


# --- 5. mounts --------------------------------------------------------------------------------


def mount_tables(ctx: StepContext) -> None:
    pid = ctx.pid(BOX)
    assert pid is not None
    inside = mounts.read(pid)
    host = mounts.read()
    ctx.show(MountList("the container's mount table (/proc/PID/mountinfo)", inside))
    ctx.show(
        Facts("mounts", [("host", f"{len(host)} mounts"), ("container", f"{len(inside)} mounts")])
    )


def check_mounts(ctx: StepContext) -> Verdict:
    box = ctx.find(BOX)
    pid = ctx.pid(BOX)
    if pid is None or box is None:
        return Verdict.no("no container of this lesson is running")
    table = mounts.read(pid)
    root_mount = mounts.find(table, "/")
    rootfs = box.spec.root.path  # type: ignore[union-attr]
    # mountinfo's root column is a path inside the mounted filesystem, which equals the host
    # path only when the rootfs lives on the filesystem mounted at /: compare identities.
    if root_mount is None or kernel.root_of(pid) != kernel.identity(rootfs):
        return Verdict.no("the container's / is not its root filesystem")
    # The same mount seen from two namespaces has the same device and root; mount ids differ.
    host_mounts = {(m.device, m.root) for m in mounts.read()}
    shared = [m.mount_point for m in table if (m.device, m.root) in host_mounts]
    if shared:
        return Verdict.no(f"the container still has host mounts: {', '.join(shared)}")
    return Verdict.ok(f"{len(table)} mounts of its own; / comes from {root_mount.root}")


# --- 6. challenge: who is PID 1? --------------------------------------------------------------


def puzzle(ctx: StepContext) -> None:
    ctx.start(PUZZLE, ctx.spec(PUZZLE_PROGRAM, hostname="puzzle"))
    ctx.say("A second container is running. Open a shell in it and find its PID 1.")


def check_puzzle(ctx: StepContext) -> Verdict:
    found = ctx.answer(PUZZLE, ANSWER_FILE)
    if isinstance(found, Verdict):
        return found
    pid, answer = found
    truth = kernel.command_name(pid)
    if answer != truth:
        return Verdict.no(f"{ANSWER_FILE} says {answer!r}, but that is not PID 1's program")
    return Verdict.ok(f"right: PID 1 is {truth} (host PID {pid})")


LESSON = Lesson(
    id="container-view",
    number=1,
    title="What a container sees",
    goals=(
        "A container is an ordinary process that the kernel shows a different world",
        "Compare the host's view and a container's view of /, hostname, processes and mounts",
        "Read namespace ids to tell which views are shared and which are new",
    ),
    package=__name__,
    steps=(
        Step(
            "start",
            "Start a container",
            start,
            check_start,
            question=Question(
                "kit creates new namespaces for the container. Which namespaces does it still "
                "share with the host?",
                ("none", "user and time", "mount and pid", "all of them"),
                1,
                "As root, kit (like Docker) creates mount, PID, UTS, IPC, network and cgroup "
                "namespaces. The user namespace is only new in rootless mode, and almost no "
                "runtime creates a time namespace.",
            ),
        ),
        Step("root", "Two different /", root, check_root),
        Step(
            "hostname",
            "A name of its own",
            hostname,
            check_hostname,
            question=Question(
                'kit called sethostname("lesson-1") inside the container. What is the host\'s '
                "hostname now?",
                ("lesson-1", "unchanged", "empty"),
                1,
                "sethostname changes the name in the caller's UTS namespace only, and the "
                "container has its own.",
            ),
        ),
        Step(
            "processes",
            "Processes: PID 1 again",
            processes,
            check_processes,
            question=Question(
                "The container's `sleep` has some PID on the host. What PID does it have inside?",
                ("the same as on the host", "1", "0"),
                1,
                "The first process of a new PID namespace is PID 1 there; the host keeps "
                "calling it by its host PID. One process, two numbers.",
            ),
        ),
        Step("mounts", "A mount table of its own", mount_tables, check_mounts),
        Challenge(
            "find-pid1",
            "Challenge: who is PID 1?",
            puzzle,
            check_puzzle,
            hints=(
                "The kernel lists every process of the container's PID namespace in its /proc, "
                "one directory per PID.",
                "`cat /proc/1/comm` prints the name of PID 1's program (`ps` shows it too).",
                f"Write the name into the file: `cat /proc/1/comm > {ANSWER_FILE}`.",
            ),
            solution=f"cat /proc/1/comm > {ANSWER_FILE}",
        ),
    ),
)
