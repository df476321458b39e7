"""Container start: ``kit run --rm --rootfs R /bin/true`` against ``runc run`` (same rootfs).

Both run the same root filesystem built by kit from the host's programs, with the same
namespaces; the runc bundle is ``runc spec`` with the process set to /bin/true. Runs alternate
between the two. Also shown: a bare ``python3 -c pass`` (the interpreter's own start-up on this
machine), which is part of every kit command and sets a floor no Python tool can go under.

    python3 bench/start.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, kit_executable, machine, report, require, scratch_dir, time_command


def runc_bundle(base: Path, rootfs: Path) -> Path:
    bundle = base / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": False}
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    require("runc")
    from kit.rootfs import build_rootfs

    base = scratch_dir("kit-bench-start-")
    try:
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "host")
        bundle = runc_bundle(base, rootfs)
        env = {**os.environ, "KIT_ROOT": str(base / "kit-root")}
        kit = kit_executable()
        runc_root = base / "runc-state"
        samples = interleaved(
            {
                "runc run": lambda i: time_command(
                    ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), f"b{i + 10}"]
                ),
                "kit run --rm": lambda i: time_command(
                    [*kit, "run", "--rm", "--rootfs", str(rootfs), "/bin/true"], env=env
                ),
                "python3 -c pass (interpreter only)": lambda i: time_command(
                    [sys.executable, "-c", "pass"]
                ),
            },
            runs=args.runs,
        )
        print(f"machine: {machine()}; kit: {' '.join(kit)}; runs: {args.runs} each")
        medians = report("container start, /bin/true", samples, baseline="runc run")
        own = medians["kit run --rm"] - medians["python3 -c pass (interpreter only)"]
        print(f"  kit beyond the interpreter's start-up: {own:.1f} ms")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
