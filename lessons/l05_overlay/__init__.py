"""Lesson 5: OverlayFS by hand.

Two lower directories and an empty upper directory are made in the lesson's scratch
directory, and an experiment process mounts an overlay of them in a mount namespace of its
own (the host never sees the mount). Then the learner watches what overlayfs writes into the
upper directory: a copied-up file when a lower file changes, a whiteout (a character device
0/0) when one is deleted, an opaque directory (``trusted.overlay.opaque=y``) when a directory
is replaced. Every check reads the upper directory on the host and the merged view through
``/proc/PID/root``. The challenge: hide a lower file without touching the lower layer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kit import mounts, overlay
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountList, Output, Tree

OVERLAY = "overlay"
FILES = {
    "lower1": {
        "etc/os-release": "NAME=base\n",
        "etc/motd": "welcome from lower1\n",
        "etc/issue": "base system\n",
        "app/cache/data": "cached\n",
        "app/config": "lower1 config\n",
    },
    "lower2": {"etc/motd": "welcome from lower2\n"},
}


def _dirs(ctx: StepContext) -> dict[str, Path]:
    base = ctx.workspace
    return {name: base / name for name in ("lower1", "lower2", "upper", "work", "merged")}


def _merged(ctx: StepContext, pid: int) -> Path:
    """The merged view, seen from the host through the experiment's root."""
    return Path(f"/proc/{pid}/root{_dirs(ctx)['merged']}")


# --- 1. lower, upper, work, merged -------------------------------------------------------------


def stack(ctx: StepContext) -> None:
    dirs = _dirs(ctx)
    for name, files in FILES.items():
        for rel, text in files.items():
            path = dirs[name] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for name in ("upper", "work", "merged"):
        dirs[name].mkdir(exist_ok=True)
    result = ctx.experiment(
        "kit.probes.overlay:mount_by_hand",
        keep=OVERLAY,
        lowers=[str(dirs["lower2"]), str(dirs["lower1"])],
        upper=str(dirs["upper"]),
        work=str(dirs["work"]),
        merged=str(dirs["merged"]),
    )
    pid = ctx.pid(OVERLAY)
    assert pid is not None
    ctx.show(
        MountList(
            "the overlay, in the experiment's own mount namespace",
            [m for m in mounts.read(pid) if m.fstype == "overlay"],
        )
    )
    for name in ("lower1", "lower2", "upper"):
        ctx.show(Tree.of(f"{name}/ (a plain directory)", dirs[name], depth=3, name=f"{name}/"))
    ctx.show(Tree.of("merged/ (the overlay)", _merged(ctx, pid), depth=3, name="merged/"))
    ctx.show(Output("merged/etc/motd", kernel.read_text(_merged(ctx, pid) / "etc" / "motd") or ""))
    ctx.say(f"mounted with {result['method']}; the host's mount table did not change")


def check_stack(ctx: StepContext) -> Verdict:
    pid = ctx.pid(OVERLAY)
    if pid is None:
        return Verdict.no("no process holds an overlay: run the step")
    merged = str(_dirs(ctx)["merged"])
    found = mounts.find(mounts.read(pid), merged)
    if found is None or found.fstype != "overlay":
        return Verdict.no(f"nothing of type overlay is mounted at {merged} in PID {pid}")
    if mounts.find(mounts.read(), merged) is not None:
        return Verdict.no("the overlay leaked into the host's mount table")
    view = _merged(ctx, pid)
    if kernel.read_text(view / "etc" / "motd") != FILES["lower2"]["etc/motd"]:
        return Verdict.no("merged/etc/motd is not the top layer's (lower2) version")
    if kernel.read_text(view / "etc" / "os-release") is None:
        return Verdict.no("merged/ lacks lower1's etc/os-release: the layers are not merged")
    return Verdict.ok("merged/ shows both lower layers, lower2's motd on top of lower1's")


# --- 2. copy-up ---------------------------------------------------------------------------------


def copy_up(ctx: StepContext) -> None:
    ctx.output_of(OVERLAY, "echo VARIANT=kit >> etc/os-release")
    dirs = _dirs(ctx)
    ctx.show(Tree.of("upper/ after appending to merged/etc/os-release", dirs["upper"], depth=3,
                     name="upper/"))  # fmt: skip
    ctx.show(
        Facts(
            "etc/os-release in each directory",
            [
                ("lower1", repr(kernel.read_text(dirs["lower1"] / "etc" / "os-release"))),
                ("upper", repr(kernel.read_text(dirs["upper"] / "etc" / "os-release"))),
            ],
        )
    )


def check_copy_up(ctx: StepContext) -> Verdict:
    dirs = _dirs(ctx)
    upper = kernel.read_text(dirs["upper"] / "etc" / "os-release")
    if upper is None or "VARIANT=kit" not in upper:
        return Verdict.no("upper/etc/os-release does not hold the change yet")
    if "VARIANT" in (kernel.read_text(dirs["lower1"] / "etc" / "os-release") or ""):
        return Verdict.no("the lower layer itself was changed")
    return Verdict.ok(
        "the whole file was copied up into upper/ and changed there; lower1 is intact"
    )


# --- 3. whiteout ----------------------------------------------------------------------------------


def whiteout(ctx: StepContext) -> None:
    ctx.output_of(OVERLAY, "rm etc/motd")
    dirs = _dirs(ctx)
    listing = ctx.output_of(OVERLAY, f"ls -l {dirs['upper']}/etc")
    ctx.show(Output("ls -l upper/etc (the c is a character device)", listing))
    ctx.show(Tree.of("lower2/ still has it", dirs["lower2"], depth=3, name="lower2/"))


def check_whiteout(ctx: StepContext) -> Verdict:
    dirs = _dirs(ctx)
    try:
        st = os.lstat(dirs["upper"] / "etc" / "motd")
    except FileNotFoundError:
        return Verdict.no("upper/etc/motd does not exist")
    if not overlay.is_whiteout(st):
        return Verdict.no("upper/etc/motd is not a character device 0/0")
    if not (dirs["lower1"] / "etc" / "motd").exists():
        return Verdict.no("lower1/etc/motd is gone: the lower layer was changed")
    pid = ctx.pid(OVERLAY)
    if pid is not None and os.path.lexists(_merged(ctx, pid) / "etc" / "motd"):
        return Verdict.no("merged/etc/motd is still visible")
    return Verdict.ok("upper/etc/motd is a whiteout (char 0/0); both lower copies are intact")


# --- 4. opaque directory --------------------------------------------------------------------------


def opaque(ctx: StepContext) -> None:
    ctx.output_of(OVERLAY, "rm -r app && mkdir app && echo fresh > app/new")
    dirs = _dirs(ctx)
    value = os.getxattr(dirs["upper"] / "app", overlay.opaque_xattr())
    ctx.show(Tree.of("upper/app", dirs["upper"] / "app", depth=2, name="upper/app/"))
    ctx.show(Facts("extended attributes of upper/app", [(overlay.opaque_xattr(), value.decode())]))
    pid = ctx.pid(OVERLAY)
    assert pid is not None
    ctx.show(Tree.of("merged/app", _merged(ctx, pid) / "app", depth=2, name="merged/app/"))


def check_opaque(ctx: StepContext) -> Verdict:
    dirs = _dirs(ctx)
    app = dirs["upper"] / "app"
    if not overlay.is_opaque(app, False):
        return Verdict.no("upper/app is not marked opaque")
    if not (dirs["lower1"] / "app" / "cache" / "data").exists():
        return Verdict.no("lower1/app was changed")
    pid = ctx.pid(OVERLAY)
    if pid is None:
        return Verdict.no("the overlay is no longer mounted")
    seen = sorted(os.listdir(_merged(ctx, pid) / "app"))
    if seen != ["new"]:
        return Verdict.no(f"merged/app shows {seen}, not just the new file")
    return Verdict.ok("upper/app is opaque: merged/app shows none of lower1's app/")


# --- 5. challenge: hide a lower file -------------------------------------------------------------


def hide(ctx: StepContext) -> None:
    pid = ctx.pid(OVERLAY)
    if pid is None:
        stack(ctx)
        pid = ctx.pid(OVERLAY)
    assert pid is not None
    ctx.show(
        Output("merged/etc/issue", kernel.read_text(_merged(ctx, pid) / "etc" / "issue") or "")
    )
    ctx.say("open a shell (s): it starts in merged/. Make etc/issue vanish from the merged view")


def check_hide(ctx: StepContext) -> Verdict:
    dirs = _dirs(ctx)
    pid = ctx.pid(OVERLAY)
    if pid is None:
        return Verdict.no("the overlay is not mounted: run the step")
    if os.path.lexists(_merged(ctx, pid) / "etc" / "issue"):
        return Verdict.no("merged/etc/issue is still there")
    if not (dirs["lower1"] / "etc" / "issue").exists():
        return Verdict.no("lower1/etc/issue was deleted: the lower layer must stay as it is")
    st = os.lstat(dirs["upper"] / "etc" / "issue")
    if not stat.S_ISCHR(st.st_mode):
        return Verdict.no("upper/etc/issue is not a whiteout")
    return Verdict.ok("a whiteout in upper/ hides lower1's etc/issue; lower1 is untouched")


LESSON = Lesson(
    id="overlay",
    number=5,
    title="OverlayFS by hand",
    goals=(
        "lower, upper, work and merged: what each directory of an overlay is for",
        "Copy-up: changing a lower file copies it into the upper directory first",
        "Whiteouts: a deletion is a character device 0/0 in the upper directory",
        "Opaque directories: a replaced directory hides everything below it",
    ),
    package=__name__,
    steps=(
        Step(
            "stack",
            "Two lower layers, one merged view",
            stack,
            check_stack,
            question=Question(
                "lower1 and lower2 both have etc/motd, and lower2 is named first. Which one "
                "does merged/etc/motd show?",
                ("lower1's", "lower2's", "both, concatenated"),
                1,
                "The first lower directory is the top of the stack: the first layer that has "
                "a name wins, and the ones below are simply not looked at.",
            ),
        ),
        Step(
            "copy-up",
            "Copy-up: change a lower file",
            copy_up,
            check_copy_up,
            question=Question(
                "You append one line to merged/etc/os-release, a file of lower1. What appears "
                "in upper/?",
                ("nothing: lower1 is changed", "just the new line", "the whole file, changed"),
                2,
                "Lower layers are never written. Before the first write, overlayfs copies the "
                "whole file up into the upper directory, then writes there.",
            ),
        ),
        Step("whiteout", "Whiteouts: delete a lower file", whiteout, check_whiteout),
        Step("opaque", "Opaque directories: replace a lower directory", opaque, check_opaque),
        Challenge(
            "hide",
            "Challenge: hide a file of the lower layer",
            hide,
            check_hide,
            hints=(
                "You cannot and must not touch lower1: work in the merged view.",
                "What did overlayfs leave in upper/ when you deleted etc/motd?",
                "`rm etc/issue` in the shell (it starts in merged/)",
            ),
            solution="rm etc/issue",
        ),
    ),
)
