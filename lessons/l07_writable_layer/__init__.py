"""Lesson 7: The writable layer's lifecycle.

A container from the lesson's image writes one file into its writable layer and one into a
volume (a directory of the lesson's workspace bind-mounted at /data). Removing the container
deletes its writable layer and nothing else: the volume's file and the image's layers stay.
A new container from the same image starts clean but finds the volume's file. Finally a tmpfs
mounted over /srv hides the image's files beneath it, without changing them. Checks read the
containers' roots through ``/proc/PID/root``, their mount tables, and the directories on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from kit import mounts
from kit.layers_view import which
from kit.spec import Mount
from lessons import imaging
from lessons.context import StepContext
from lessons.model import Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountList, Output, Tree

BOX, AGAIN, COVERED = "box", "again", "covered"


def _volume(ctx: StepContext) -> Path:
    return ctx.workspace / "volume"


def _volume_mount(ctx: StepContext) -> Mount:
    volume = _volume(ctx)
    volume.mkdir(exist_ok=True)
    return Mount("/data", "bind", str(volume), ["rbind", "rw"])


# --- 1. a container writes ----------------------------------------------------------------------


def changes(ctx: StepContext) -> None:
    demo = imaging.ready_image(ctx)
    imaging.start(ctx, BOX, demo, mounts=[_volume_mount(ctx)])
    ctx.output_of(BOX, "echo 'written in the container' > /etc/note")
    ctx.output_of(BOX, "echo 'written in the volume' > /data/note")
    ctx.show(Tree.of("the container's writable layer (upper)", imaging.layer_dir(ctx, BOX) /
                     "upper", depth=3, name="upper/"))  # fmt: skip
    ctx.show(Tree.of("the volume, a directory on the host", _volume(ctx), depth=2, name="volume/"))
    pid = ctx.pid(BOX)
    assert pid is not None
    ctx.show(MountList("the container's mounts of its files", [
        m for m in mounts.read(pid) if m.mount_point in ("/", "/data")]))  # fmt: skip


def check_changes(ctx: StepContext) -> Verdict:
    if ctx.pid(BOX) is None:
        return Verdict.no("the container is not running: run the step")
    if not (imaging.layer_dir(ctx, BOX) / "upper" / "etc" / "note").is_file():
        return Verdict.no("the writable layer has no etc/note")
    if not (_volume(ctx) / "note").is_file():
        return Verdict.no("the volume has no note")
    return Verdict.ok("/etc/note is in the writable layer, /data/note in the volume")


# --- 2. remove it -------------------------------------------------------------------------------


def remove(ctx: StepContext) -> None:
    if ctx.pid(BOX) is None:
        changes(ctx)
    layer = imaging.layer_dir(ctx, BOX)
    imaging.remove(ctx, BOX)
    demo = imaging.ready_image(ctx)
    ctx.show(
        Facts(
            "after removing the container",
            [
                ("its writable layer", f"{layer}: {'still there' if layer.exists() else 'gone'}"),
                ("the volume", ", ".join(sorted(os.listdir(_volume(ctx)))) or "empty"),
                ("the image's layers", f"{sum(d.is_dir() for d in demo.layer_dirs())} unpacked"),
            ],
        )
    )


def check_remove(ctx: StepContext) -> Verdict:
    if ctx.pid(BOX) is not None:
        return Verdict.no("the container is still running")
    if not (_volume(ctx) / "note").is_file():
        return Verdict.no("the volume has no note (run the first step)")
    if imaging.layer_dir(ctx, BOX).exists():
        return Verdict.no("the container's writable layer still exists")
    demo = imaging.image(ctx)
    if demo is None or not demo.is_unpacked():
        return Verdict.no("the image's layers are gone")
    return Verdict.ok("writable layer deleted; the volume's note and the image's layers remain")


# --- 3. a new container ---------------------------------------------------------------------------


def fresh(ctx: StepContext) -> None:
    demo = imaging.ready_image(ctx)
    imaging.start(ctx, AGAIN, demo, mounts=[_volume_mount(ctx)])
    said = ctx.exec(AGAIN, "cat /etc/note; cat /data/note")
    ctx.show(Output("cat /etc/note; cat /data/note", said.stdout + said.stderr))


def check_fresh(ctx: StepContext) -> Verdict:
    pid = ctx.pid(AGAIN)
    if pid is None:
        return Verdict.no("the new container is not running")
    if os.path.lexists(f"/proc/{pid}/root/etc/note"):
        return Verdict.no("the new container has /etc/note: its writable layer is not fresh")
    if not os.path.isfile(f"/proc/{pid}/root/data/note"):
        return Verdict.no("the new container does not see the volume's note")
    return Verdict.ok("a clean root from the image, and the volume's note at /data")


# --- 4. a mount hides what is beneath ------------------------------------------------------------


def hidden(ctx: StepContext) -> None:
    demo = imaging.ready_image(ctx)
    tmpfs = Mount("/srv", "tmpfs", "tmpfs", ["nosuid", "nodev", "size=1m"])
    imaging.start(ctx, COVERED, demo, mounts=[tmpfs])
    ctx.show(Output("ls -a /srv in the container", ctx.output_of(COVERED, "ls -a /srv")))
    layers = [(d, f"layer {i}") for i, d in enumerate(demo.layer_dirs())]
    layers.append((imaging.layer_dir(ctx, COVERED) / "upper", f"container {COVERED}"))
    answer = which(layers, "/srv/hello.txt", mounts=[("/srv", "tmpfs mount")])
    ctx.show(Output("kit which /srv/hello.txt", "\n".join(answer.lines())))


def check_hidden(ctx: StepContext) -> Verdict:
    pid = ctx.pid(COVERED)
    if pid is None:
        return Verdict.no("the container with a tmpfs on /srv is not running")
    srv = mounts.find(mounts.read(pid), "/srv")
    if srv is None or srv.fstype != "tmpfs":
        return Verdict.no("nothing of type tmpfs is mounted at /srv in the container")
    if os.path.lexists(f"/proc/{pid}/root/srv/hello.txt"):
        return Verdict.no("/srv/hello.txt is still visible in the container")
    demo = imaging.image(ctx)
    if demo is None or not (demo.layer_dirs()[1] / "srv" / "hello.txt").is_file():
        return Verdict.no("the image's layer lost srv/hello.txt")
    return Verdict.ok("the tmpfs on /srv hides the image's /srv/hello.txt, which is unchanged")


LESSON = Lesson(
    id="writable-layer",
    number=7,
    title="The writable layer's lifecycle",
    goals=(
        "Changes in a container live in its writable layer, and die with it",
        "Volumes and bind mounts are outside the layers: they persist",
        "A new container from the same image starts from the image again",
        "A mount hides the image's files beneath it, without changing them",
    ),
    package=__name__,
    steps=(
        Step("changes", "A container writes two files", changes, check_changes),
        Step(
            "remove",
            "Remove the container",
            remove,
            check_remove,
            question=Question(
                "The container is removed. Which of its two notes still exists?",
                ("both", "/etc/note", "/data/note (the volume's)", "neither"),
                2,
                "Removing a container deletes its writable layer, where /etc/note was. The "
                "volume is a host directory that was only mounted into the container.",
            ),
        ),
        Step("fresh", "A new container from the same image", fresh, check_fresh),
        Step(
            "hidden",
            "A mount hides what is beneath",
            hidden,
            check_hidden,
            question=Question(
                "A tmpfs is mounted at /srv, where the image has hello.txt. What does "
                "`ls /srv` show, and what happens to the image's file?",
                (
                    "hello.txt: a mount adds to a directory",
                    "nothing; the file is deleted",
                    "nothing; the file is still in the image, just covered",
                ),
                2,
                "A mount replaces what a path leads to for as long as it is mounted. The "
                "image's layer is untouched; unmount the tmpfs and the file is back.",
            ),
        ),
    ),
)
