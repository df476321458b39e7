"""Layer extraction: kit against ``umoci unpack`` and GNU tar, on the same gzip layers.

Two layers, stored as the gzip blobs of one OCI image (built by kit from copies of real
trees): Perl's library (about 1,400 files) and Python's standard library (about 8,000 files,
~250 MB). Each contender unpacks the whole image into an empty directory:

* ``kit``: a fresh interpreter running kit's layer extraction (digest and diff-id checks,
  the tarsafe policy, whiteouts) into a fresh store;
* ``umoci unpack``: the same image from the same OCI layout (it also writes an mtree
  manifest of the result, part of what it does);
* ``tar -xzf``: GNU tar on the same blobs, one after the other (no checks at all).

Runs alternate between contenders; medians and ratios (target: kit <= 1.5x umoci).

    python3 bench/layers.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine, report, require, scratch, time_command

PYTHON_LIB = Path(os.__file__).parent
TREES = {"perl": Path("/usr/share/perl"), "python-stdlib": PYTHON_LIB}

_KIT_UNPACK = """
import sys
from kit.image.store import Store
from kit.image.image import resolve
resolve(Store(), "bench:layers").unpack()
"""


def build_image(base: Path) -> tuple[Path, list[Path]]:
    """A kit image of the trees; returns its saved OCI layout and its layer blobs."""
    from kit.image.archive import save
    from kit.image.build import Builder
    from kit.image.store import Store

    context = base / "context"
    context.mkdir()
    lines = ["FROM scratch"]
    for name, tree in TREES.items():
        shutil.copytree(
            tree, context / name, symlinks=True, ignore=shutil.ignore_patterns("site-packages")
        )
        lines.append(f"COPY {name} /{name}")
    (context / "Kitfile").write_text("\n".join(lines) + "\n")
    store = Store(base / "build-root")
    import io

    image = Builder(store, str(context), log=io.StringIO()).build("bench:layers")
    layout = base / "layout"
    save(image.image, str(layout), tag="bench:layers", as_tar=False)
    blobs = [store.blob_path(layer.digest) for layer in image.image.manifest.layers]
    shutil.rmtree(context)
    return layout, blobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require("umoci")
    with scratch("kit-bench-layers-") as base:
        layout, blobs = build_image(base)
        sizes = sum(b.stat().st_size for b in blobs)
        print(f"machine: {machine()}")
        print(f"image: {len(blobs)} gzip layers, {sizes / 1e6:.1f} MB compressed")
        source_root = base / "build-root"
        out = base / "out"

        def fresh() -> Path:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return out

        def kit_run(_i: int) -> float:
            target = fresh()
            # Only the blobs, manifest and config: a store where nothing is unpacked yet.
            shutil.copytree(source_root / "images", target / "images")
            env = {**os.environ, "KIT_ROOT": str(target)}
            return time_command([sys.executable, "-c", _KIT_UNPACK], env=env)

        def umoci_run(_i: int) -> float:
            target = fresh()
            return time_command(
                ["umoci", "unpack", "--image", f"{layout}:layers", str(target / "bundle")]
            )

        def tar_run(_i: int) -> float:
            target = fresh()
            import time

            started = time.perf_counter()
            for blob in blobs:
                subprocess.run(["tar", "-xzf", str(blob), "-C", str(target)], check=True)
            return time.perf_counter() - started

        samples = interleaved(
            {"umoci unpack": umoci_run, "kit (unpack layers)": kit_run, "GNU tar -xzf": tar_run},
            args.runs,
            warmup=1,
        )
        medians = report("layer extraction (whole image)", samples, "umoci unpack")
        ratio = medians["kit (unpack layers)"] / medians["umoci unpack"]
        print(f"  kit / umoci = {ratio:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
