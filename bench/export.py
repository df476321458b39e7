"""``kit export`` throughput against ``tar -c`` of the same tree.

The tree is a root filesystem built by kit from the host's programs plus a 64 MiB file of
random bytes (so that file data, not only metadata, is measured). kit exports a stopped
container made on that tree (its root is opened as a detached clone: no mount appears); tar
archives the directory. Both write to a file on the same filesystem (tar skips reading file
data when it writes to /dev/null, so /dev/null would not be a fair sink).

    python3 bench/export.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    compile_bytecode,
    interleaved,
    kit_executable,
    kit_variants,
    machine,
    report,
    scratch,
    time_command,
)


def tree_size(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compile_bytecode()
    from kit.rootfs import build_rootfs

    with scratch("kit-bench-export-") as base:
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "host")
        with open(rootfs / "big.bin", "wb") as f:
            f.write(os.urandom(64 << 20))
        size = tree_size(rootfs)
        env = {**os.environ, "KIT_ROOT": str(base / "kit-root")}
        kit = kit_executable()
        subprocess.run(
            [*kit, "run", "--name", "c", "--rootfs", str(rootfs), "/bin/true"], env=env, check=True
        )
        out = base / "out.tar"
        contenders = {
            "tar -c": lambda i: time_command(["tar", "-C", str(rootfs), "-cf", str(out), "."]),
        }
        for suffix, variant_env in kit_variants(env).items():
            contenders["kit export" + suffix] = lambda i, e=variant_env: time_command(
                [*kit, "export", "-o", str(out), "c"], env=e
            )
        contenders["python3 -c pass (interpreter only)"] = lambda i: time_command(
            [sys.executable, "-c", "pass"]
        )
        samples = interleaved(contenders, runs=args.runs)
        print(f"machine: {machine()}; tree: {size / 2**20:.1f} MiB; runs: {args.runs} each")
        medians = report("export of a root filesystem", samples, baseline="tar -c")
        for name in [n for n in samples if n.startswith(("tar", "kit"))]:
            mib_s = size / 2**20 / (statistics.median(samples[name]))
            print(f"  {name:<34} {mib_s:>10.0f} MiB/s")
        own = medians["kit export"] - medians["python3 -c pass (interpreter only)"]
        print(f"  kit export beyond the interpreter's start-up: {own:.1f} ms")


if __name__ == "__main__":
    main()
