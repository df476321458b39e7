"""Lesson 6: Images are layers.

A small image is built with a real Kitfile in a store kept inside the lesson's workspace:
``ADD`` a busybox root, ``COPY`` a file, ``RUN`` a command. Each filesystem-changing step is a
layer with a digest, unpacked once into a directory. Two containers start from the image:
their root mounts list the very same layer directories as ``lowerdir``, but each has its own
upper directory, so their files differ. Finally ``which`` tells, for a path, which layer
supplied it and what it shadows. Checks read the containers' mount tables, their roots through
``/proc/PID/root``, and the layer and upper directories on disk.
"""

from __future__ import annotations

from kit import mounts
from kit.layers_view import layer_stack, which
from lessons import imaging
from lessons.context import StepContext
from lessons.model import Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountList, Output, Tree

ONE, TWO = "one", "two"


def _lowers(pid: int) -> list[str]:
    """The lowerdir entries of a process's root overlay, from its mount table."""
    root = mounts.find(mounts.read(pid), "/")
    if root is None or root.fstype != "overlay":
        return []
    return [
        option.split("=", 1)[1]
        for option in root.super_options
        if option.startswith(("lowerdir=", "lowerdir+="))
    ]


# --- 1. build ---------------------------------------------------------------------------------


def build(ctx: StepContext) -> None:
    demo, log = imaging.build(ctx)
    ctx.show(Output("Kitfile", imaging.KITFILE))
    ctx.show(Output("kit build", log))
    history = [h for h in demo.config.history if not h.get("empty_layer")]
    rows = []
    for i, (layer, diff_id) in enumerate(
        zip(demo.manifest.layers, demo.config.diff_ids, strict=True)
    ):
        made_by = history[i].get("created_by", "") if i < len(history) else ""
        rows.append((f"layer {i}", f"{layer.digest[:19]}…  {layer.size} bytes  {made_by}"))
        rows.append(("  diff id", f"{diff_id[:19]}…  (hash of the uncompressed tar)"))
    ctx.show(Facts("the image's layers (manifest and config)", rows))
    stack = layer_stack([(d, f"layer {i}", "") for i, d in enumerate(demo.layer_dirs())])
    ctx.show(Output("what each layer adds, changes, removes (kit layers)", "\n".join(
        stack.lines(max_changes=8))))  # fmt: skip
    ctx.show(Tree.of("the RUN step's layer, unpacked", demo.layer_dirs()[-1], depth=3,
                     name="layer 2/"))  # fmt: skip


def check_build(ctx: StepContext) -> Verdict:
    demo = imaging.image(ctx)
    if demo is None:
        return Verdict.no(f"the lesson's store has no image {imaging.IMAGE}")
    if len(demo.manifest.layers) != 3:
        return Verdict.no(f"the image has {len(demo.manifest.layers)} layers, not 3")
    for layer in demo.manifest.layers:
        reader = demo.store.open_blob(layer)
        try:
            reader.verify(layer.digest, layer.size)  # hashes the whole blob
        except Exception as error:
            return Verdict.no(str(error))
        finally:
            reader.raw.close()
    if not demo.is_unpacked():
        return Verdict.no("the layers are not unpacked")
    if not (demo.layer_dirs()[-1] / "srv" / "built.txt").is_file():
        return Verdict.no("the RUN layer does not hold srv/built.txt")
    return Verdict.ok("3 layers, each blob hashing to its digest, unpacked by chain id")


# --- 2. two containers, the same layers ---------------------------------------------------------


def two(ctx: StepContext) -> None:
    demo = imaging.ready_image(ctx)
    for name in (ONE, TWO):
        imaging.start(ctx, name, demo)
        ctx.output_of(name, f"echo {name} > /srv/whoami")
    for name in (ONE, TWO):
        pid = ctx.pid(name)
        assert pid is not None
        root = [m for m in mounts.read(pid) if m.mount_point == "/"]
        ctx.show(MountList(f"container {name}: its root mount", root))
        layers = [(f"lowerdir {i}", path) for i, path in enumerate(_lowers(pid))]
        upper = [o.split("=", 1)[1] for o in root[0].super_options if o.startswith("upperdir=")]
        ctx.show(Facts(f"container {name}: its overlay's directories", [*layers,
                       ("upperdir", upper[0] if upper else "?")]))  # fmt: skip
        ctx.show(
            Output(f"container {name}: cat /srv/whoami", ctx.output_of(name, "cat /srv/whoami"))
        )
        ctx.show(Tree.of(f"container {name}: its upper directory", imaging.layer_dir(ctx, name) /
                         "upper", depth=3, name="upper/"))  # fmt: skip


def check_two(ctx: StepContext) -> Verdict:
    pids = {name: ctx.pid(name) for name in (ONE, TWO)}
    if None in pids.values():
        return Verdict.no("the two containers are not both running")
    lowers = {name: _lowers(pid) for name, pid in pids.items() if pid is not None}
    if not lowers[ONE] or lowers[ONE] != lowers[TWO]:
        return Verdict.no("the containers' root overlays do not stand on the same layers")
    seen = {}
    for name, pid in pids.items():
        try:
            seen[name] = open(f"/proc/{pid}/root/srv/whoami").read().strip()  # noqa: SIM115
        except OSError:
            return Verdict.no(f"container {name} has no /srv/whoami")
    if seen != {ONE: ONE, TWO: TWO}:
        return Verdict.no(f"the containers do not see their own files: {seen}")
    return Verdict.ok(
        f"both roots list the same {len(lowers[ONE])} lower directories; /srv/whoami differs"
    )


# --- 3. which layer? ---------------------------------------------------------------------------


def _which_lines(ctx: StepContext, name: str, path: str) -> list[str]:
    demo = imaging.image(ctx)
    assert demo is not None
    layers = [(d, f"layer {i}") for i, d in enumerate(demo.layer_dirs())]
    layers.append((imaging.layer_dir(ctx, name) / "upper", f"container {name}"))
    return which(layers, path).lines()


def provenance(ctx: StepContext) -> None:
    ctx.output_of(ONE, "echo changed by one > /srv/hello.txt")
    lines: list[str] = []
    for name, path in ((ONE, "/srv/hello.txt"), (TWO, "/srv/hello.txt"), (ONE, "/bin/sh"),
                       (TWO, "/srv/whoami")):  # fmt: skip
        lines += [f"in container {name}:", *("  " + line for line in _which_lines(ctx, name, path))]
    ctx.show(Output("kit which", "\n".join(lines)))


def check_provenance(ctx: StepContext) -> Verdict:
    demo = imaging.image(ctx)
    if demo is None or ctx.pid(ONE) is None:
        return Verdict.no("the image or container one is missing: run the earlier steps")
    upper = imaging.layer_dir(ctx, ONE) / "upper" / "srv" / "hello.txt"
    if not upper.is_file() or "changed" not in upper.read_text():
        return Verdict.no("container one has not changed /srv/hello.txt")
    original = demo.layer_dirs()[1] / "srv" / "hello.txt"
    if original.read_text() != "hello from the image\n":
        return Verdict.no("the image layer itself changed")
    layers = [(d, f"layer {i}") for i, d in enumerate(demo.layer_dirs())]
    one = which([*layers, (upper.parent.parent, "one")], "/srv/hello.txt")
    two = which([*layers, (imaging.layer_dir(ctx, TWO) / "upper", "two")], "/srv/hello.txt")
    if one.supplier != "one" or two.supplier != "layer 1":
        return Verdict.no(f"unexpected suppliers: one={one.supplier}, two={two.supplier}")
    return Verdict.ok("in one, /srv/hello.txt comes from its writable layer; in two, from layer 1")


LESSON = Lesson(
    id="images",
    number=6,
    title="Images are layers",
    goals=(
        "An image: a manifest, a config, and layer tars named by their digests",
        "One layer per filesystem-changing build step, unpacked once and shared",
        "Containers of one image share its layers and differ in their writable layers",
        "Which layer a file came from, and what it shadows",
    ),
    package=__name__,
    steps=(
        Step(
            "build",
            "Build an image, layer by layer",
            build,
            check_build,
            question=Question(
                "The Kitfile has FROM, ADD, COPY, RUN and CMD. How many layers will the image "
                "have?",
                ("5", "3", "1"),
                1,
                "Only instructions that change files make layers: ADD, COPY, RUN. FROM scratch "
                "starts from nothing and CMD only changes the config.",
            ),
        ),
        Step(
            "two",
            "Two containers, the same layers",
            two,
            check_two,
            question=Question(
                "Both containers write /srv/whoami. How many copies of the image's layers "
                "exist on disk now?",
                ("one, shared", "two, one per container", "three"),
                0,
                "Layers are read-only, so every container can stack the very same directories; "
                "only the upper directory is per container.",
            ),
        ),
        Step("which", "Which layer did a file come from?", provenance, check_provenance),
    ),
)
