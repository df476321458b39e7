"""Container start time against the number of image layers: 1, 10, 100, 500.

Each image is a static busybox in its bottom layer plus N-1 one-file layers, unpacked in the
store beforehand (as after a pull); each run is ``kit run --rm IMAGE /bin/true``, so it
includes mounting the overlay of all the layers in the container's rootfs stage, and
removing the writable layer at the end. ``kit run --rm --rootfs`` on the same busybox tree is
the floor (no overlay at all). Reported: medians, the ratio to that floor, and the cost per
extra layer between the ends of the curve.

    python3 bench/layer_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, kit_executable, machine, report, scratch, time_command

COUNTS = (1, 10, 100, 500)


def make_images(root: Path, base: Path) -> None:
    from kit.image import layer as layers
    from kit.image.image import new_config, write_image
    from kit.image.store import Store

    store = Store(root).init()
    descs, diff_ids = [], []
    trees = [base]
    for i in range(1, max(COUNTS)):
        tree = root.parent / "trees" / str(i)
        (tree / "layers").mkdir(parents=True)
        (tree / "layers" / str(i)).write_text(str(i))
        trees.append(tree)
    for tree in trees:
        buf = io.BytesIO()
        packed = layers.pack(tree, buf, compress=False)
        descs.append(store.put_bytes(buf.getvalue(), packed.desc.media_type))
        diff_ids.append(packed.diff_id)
    for count in COUNTS:
        config = new_config()
        config["rootfs"]["diff_ids"] = diff_ids[:count]
        write_image(store, config, descs[:count], f"layers:{count}").unpack()
    store.init_layer()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with scratch("kit-bench-layer-start-") as base_dir:
        busybox = base_dir / "busybox"
        (busybox / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", busybox / "bin" / "busybox")
        os.symlink("busybox", busybox / "bin" / "true")
        for name in ("proc", "dev", "sys", "tmp", "etc"):
            (busybox / name).mkdir()
        root = base_dir / "kit-root"
        make_images(root, busybox)
        env = {**os.environ, "KIT_ROOT": str(root)}
        kit = kit_executable()
        contenders = {
            "--rootfs (no overlay)": lambda _i: time_command(
                [*kit, "run", "--rm", "--rootfs", str(busybox), "/bin/true"], env=env
            )
        }
        for count in COUNTS:
            contenders[f"{count} layers"] = lambda _i, c=count: time_command(
                [*kit, "run", "--rm", f"layers:{c}", "/bin/true"], env=env
            )
        print(f"machine: {machine()}")
        samples = interleaved(contenders, args.runs)
        medians = report("kit run --rm IMAGE /bin/true", samples, "--rootfs (no overlay)")
        first, last = medians[f"{COUNTS[0]} layers"], medians[f"{COUNTS[-1]} layers"]
        per_layer = (last - first) / (COUNTS[-1] - COUNTS[0])
        print(f"  growth: {per_layer:.3f} ms per extra layer ({COUNTS[0]} -> {COUNTS[-1]})")


if __name__ == "__main__":
    main()
