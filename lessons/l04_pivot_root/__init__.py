"""Lesson 4: pivot_root.

pivot_root(2)'s preconditions are tried for real in a throw-away mount namespace
(:mod:`kit.probes.pivot`: a plain directory fails with EBUSY or EINVAL, a bind-mounted one
works). Then a container is paused just before and just after its ``pivot-root`` stage, to see
the roots swap and the host's mounts vanish. Lesson 2's chroot escape is tried again inside a
finished container (a probe, :func:`kit.probes.escape.escape_from_container`) and fails. The
challenge: find, in mountinfo, which host directory the container's ``/`` came from.
"""

from __future__ import annotations

from kit import mounts
from kit.trace import Event
from lessons import kernel
from lessons.context import StepContext
from lessons.live import LiveContainer
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountChange, MountList, Output, Tree

PIVOT = "pivot"
ESCAPEE = "escapee"
QUIZ = "quiz"
ANSWER_FILE = "/tmp/root-source"


def _pivot(ctx: StepContext) -> LiveContainer | None:
    box = ctx.find(PIVOT)
    if isinstance(box, LiveContainer) and kernel.alive(box.host_pid):
        return box
    return None


def _host_mount_ids(table: list[mounts.Mount]) -> set[tuple[str, str]]:
    """How one mount is recognised from two namespaces: its device and its root."""
    return {(m.device, m.root) for m in table}


# --- 1. preconditions -------------------------------------------------------------------------


def preconditions(ctx: StepContext) -> None:
    rootfs = str(ctx.rootfs())
    result = ctx.experiment("kit.probes.pivot:pivot_attempts", root=rootfs)
    for number, attempt in enumerate(result["attempts"], 1):
        outcome = "succeeded" if attempt["pivoted"] else attempt["errno"]
        ctx.show(Output(f"attempt {number}: {attempt['setup']}: {outcome}", attempt["message"]))
    box = ctx.start(PIVOT, ctx.spec(), pauses=("volumes", "pivot-root"))
    assert box.pause is not None and box.host_pid is not None
    ours = [m for m in box.pause.mounts if kernel.under(m.mount_point, rootfs)]
    ctx.show(
        MountList(f"the container, paused before pivot-root: mounts at and below {rootfs}", ours)
    )
    ctx.show(
        Facts(
            "the container's root, before the swap",
            [
                ("its / identity", str(kernel.root_of(box.host_pid))),
                ("the host's / identity", str(kernel.host_root())),
            ],
        )
    )


def check_preconditions(ctx: StepContext) -> Verdict:
    box = _pivot(ctx)
    if box is None or box.host_pid is None:
        return Verdict.no("no container is waiting before its pivot_root")
    rootfs = box.spec.root.path
    table = mounts.read(box.host_pid)
    bind = mounts.find(table, rootfs)
    # The directory itself must be mounted there: through the container's eyes, the mount at
    # rootfs shows the very directory the host sees (mountinfo's root field would only say
    # so when rootfs's filesystem is mounted at /).
    inside = f"/proc/{box.host_pid}/root{rootfs}"
    if bind is None or kernel.identity(inside) != kernel.identity(rootfs):
        return Verdict.no(f"{rootfs} is not a mount point in the container's namespace")
    if kernel.root_of(box.host_pid) != kernel.host_root():
        return Verdict.no("the container has already changed its root")
    return Verdict.ok(f"{rootfs} is bind-mounted onto itself: pivot_root will accept it")


# --- 2. the swap ------------------------------------------------------------------------------


def swap(ctx: StepContext) -> None:
    box = ctx.container(PIVOT)
    pause = box.advance_to("pivot-root")
    ctx.show(MountChange("what pivot-root did to the mount table", pause.diff))
    ctx.show(Tree.of("the container's / now", f"/proc/{box.host_pid}/root", depth=1, name="/"))
    ctx.show(
        Facts(
            "the container's root, after the swap",
            [
                ("its / identity", str(kernel.root_of(box.host_pid or 0))),
                ("the root filesystem's identity", str(kernel.identity(box.spec.root.path))),
                ("mounts left", str(len(pause.mounts))),
            ],
        )
    )


def check_swap(ctx: StepContext) -> Verdict:
    box = _pivot(ctx)
    if box is None or box.host_pid is None:
        return Verdict.no("the lesson's container is not running")
    if kernel.root_of(box.host_pid) != kernel.identity(box.spec.root.path):
        return Verdict.no("the container's root is not its root filesystem yet")
    left = _host_mount_ids(mounts.read(box.host_pid)) & _host_mount_ids(mounts.read())
    if left:
        return Verdict.no(f"{len(left)} of the host's mounts are still in the container's table")
    return Verdict.ok("the root filesystem is /, and none of the host's mounts is left")


# --- 3. the escape, again ---------------------------------------------------------------------


def escape_fails(ctx: StepContext) -> None:
    spec = ctx.spec(hostname="escapee")
    spec.kit.probe = "kit.probes.escape:escape_from_container"
    spec.kit.probe_args = {"wait": True}
    box = ctx.start(ESCAPEE, spec, pipe_stdio=True)
    result = box.read_line()
    for line in result["events"]:
        ctx.emit(Event.from_json(line))
    ctx.show(Output("`/` inside the container", "  ".join(result["before"]["listing"])))
    ctx.show(
        Output("`/` after the same climb as in lesson 2", "  ".join(result["after"]["listing"]))
    )
    ctx.show(
        Facts(
            "where the climb ended",
            [
                ("its / identity", str(tuple(result["after"]["root"]))),
                ("the container's root filesystem", str(kernel.identity(spec.root.path))),
                ("the host's /", str(kernel.host_root())),
            ],
        )
    )


def check_escape_fails(ctx: StepContext) -> Verdict:
    box = ctx.find(ESCAPEE)
    pid = ctx.pid(ESCAPEE)
    if pid is None or not isinstance(box, LiveContainer):
        return Verdict.no("no escape attempt is running in a container")
    if kernel.root_of(pid) == kernel.host_root():
        return Verdict.no("the escapee reached the host's /")
    if kernel.root_of(pid) != kernel.identity(box.spec.root.path):
        return Verdict.no("the escapee is somewhere unexpected")
    return Verdict.ok(
        "after the climb, the escapee's root is still the container's root filesystem"
    )


# --- 4. challenge: where did / come from? -----------------------------------------------------


def quiz(ctx: StepContext) -> None:
    ctx.start(QUIZ, ctx.spec(hostname="quiz"))
    ctx.say("a container is running: open a shell in it (s) and read its mount table")


def check_quiz(ctx: StepContext) -> Verdict:
    found = ctx.answer(QUIZ, ANSWER_FILE)
    if isinstance(found, Verdict):
        return found
    pid, answer = found
    root_mount = mounts.find(mounts.read(pid), "/")
    truth = root_mount.root if root_mount else None
    if answer != truth:
        return Verdict.no(f"{ANSWER_FILE} says {answer!r}: that is not where / came from")
    # The root field is a path inside the filesystem (device major:minor), not a host path.
    where = f"of the filesystem on device {root_mount.device}" if root_mount else ""
    return Verdict.ok(f"right: the container's / is {truth} {where}".rstrip())


LESSON = Lesson(
    id="pivot-root",
    number=4,
    title="pivot_root",
    goals=(
        "pivot_root's preconditions: why a plain directory gets EBUSY or EINVAL",
        "Swapping the root mount, and detaching the old root",
        "Why the chroot escape of lesson 2 fails after pivot_root",
    ),
    package=__name__,
    steps=(
        Step(
            "preconditions",
            "pivot_root wants a mount point",
            preconditions,
            check_preconditions,
            question=Question(
                "pivot_root is asked to make a directory the new root. The directory is on a "
                "mount of its own disk, but it is not a mount point itself. What does the "
                "kernel answer?",
                ("it works", "EINVAL", "EPERM", "ENOENT"),
                1,
                "new_root must be the root of a mount. A directory inside a mount is refused "
                "with EINVAL; one on the same mount as the current / gets EBUSY even earlier. "
                "Bind-mounting the directory onto itself fixes both.",
            ),
        ),
        Step(
            "swap",
            "Swapping roots",
            swap,
            check_swap,
            question=Question(
                'After pivot_root(".", ".") and umount2(".", MNT_DETACH), how many of the '
                "host's mounts are left in the container's mount table?",
                ("all of them", "only /proc", "none"),
                2,
                "The host's whole tree hung below the old root; detaching the old root removes "
                "it, and every mount below it, from this namespace in one call.",
            ),
        ),
        Step(
            "escape-fails",
            "The same escape, now",
            escape_fails,
            check_escape_fails,
            question=Question(
                "Inside a finished container, a root process repeats lesson 2's climb. Where "
                "does it end?",
                ("at the host's /", "at the container's /", "the chroot call fails"),
                1,
                "The climb still works as before, but the top of this mount namespace is now "
                "the container's root: the host's root is not in the namespace at all.",
            ),
        ),
        Challenge(
            "root-source",
            "Challenge: where did / come from?",
            quiz,
            check_quiz,
            hints=(
                "Every mount of a namespace is a line of /proc/self/mountinfo; `man 5 proc` "
                "describes its fields.",
                "Field 5 is the mount point and field 4 the directory of the filesystem that "
                "is mounted there. Find the line whose mount point is /.",
                f"`awk '$5 == \"/\" {{print $4}}' /proc/self/mountinfo > {ANSWER_FILE}`",
            ),
            solution=f"awk '$5 == \"/\" {{print $4}}' /proc/self/mountinfo > {ANSWER_FILE}",
        ),
    ),
)
