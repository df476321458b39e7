"""Images and image containers for lessons 6, 7 and 11, kept inside the lesson's scratch directory.

A lesson must leave nothing behind after *Reset*, so it does not use the learner's own image
store: it keeps a store of its own under its workspace (``<workspace>/kit``), builds a small
busybox image there with a real Kitfile, and gives each container its writable layer under
``<workspace>/containers/NAME``. The containers themselves are ordinary kit containers: the
same overlay of image layers + writable layer, mounted in their own mount namespace by the
rootfs stage.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from kit.image.build import Builder
from kit.image.image import Image, resolve
from kit.image.store import Store
from kit.spec import Mount, OverlaySpec
from lessons.context import StepContext
from lessons.live import LiveContainer

TOOLS = ("sh", "sleep", "cat", "echo", "ls", "rm", "mkdir", "stat", "hostname")
IMAGE = "lesson/demo:1"
KITFILE = """\
FROM scratch
ADD busybox.tar /
COPY hello.txt /srv/hello.txt
RUN echo "built by RUN" > /srv/built.txt && mkdir -p /etc && echo demo > /etc/motd
CMD ["/bin/sh"]
"""
#: A container that just stays (busybox's sleep knows "infinity").
IDLE = ["/bin/sleep", "infinity"]


def store(ctx: StepContext) -> Store:
    return Store(ctx.workspace / "kit")


def image(ctx: StepContext) -> Image | None:
    """The lesson's image, if it was built (checks use this: it never builds)."""
    try:
        return resolve(store(ctx), IMAGE)
    except Exception:
        return None


def build(ctx: StepContext) -> tuple[Image, str]:
    """Build the lesson's image from its Kitfile; return it and the build log."""
    context = ctx.workspace / "context"
    if context.exists():
        shutil.rmtree(context)
    root = context / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for tool in TOOLS:
        os.symlink("busybox", root / "bin" / tool)
    subprocess.run(["tar", "-C", str(root), "-cf", str(context / "busybox.tar"), "."], check=True)
    shutil.rmtree(root)
    (context / "hello.txt").write_text("hello from the image\n")
    (context / "Kitfile").write_text(KITFILE)
    log = io.StringIO()
    result = Builder(store(ctx), str(context), log=log).build(IMAGE)
    return result.image, log.getvalue()


def ready_image(ctx: StepContext) -> Image:
    """The lesson's image, built now if the lesson's store does not hold it yet."""
    return image(ctx) or build(ctx)[0]


def layer_dir(ctx: StepContext, name: str) -> Path:
    """The writable layer of the lesson's container ``name``."""
    return ctx.workspace / "containers" / name


def start(
    ctx: StepContext,
    name: str,
    demo: Image,
    *,
    args: list[str] | None = None,
    mounts: list[Mount] | None = None,
) -> LiveContainer:
    """Start a container from ``demo`` with a fresh writable layer, kept as ``name``."""
    ctx.session.drop(name)
    directory = layer_dir(ctx, name)
    if directory.exists():
        shutil.rmtree(directory)
    for part in ("upper", "work", "merged"):
        (directory / part).mkdir(parents=True)
    spec = ctx.spec(args or IDLE, rootfs=directory / "merged", hostname=name)
    lowers = [str(demo.store.init_layer()), *demo.lower_dirs()]
    spec.kit.overlay = OverlaySpec(
        lowers=lowers, upper=str(directory / "upper"), work=str(directory / "work")
    )
    spec.mounts += mounts or []
    return ctx.start(name, spec)


def remove(ctx: StepContext, name: str) -> None:
    """Stop the container and delete its writable layer (what ``kit rm`` does)."""
    ctx.session.drop(name)
    directory = layer_dir(ctx, name)
    if directory.exists():
        shutil.rmtree(directory)
