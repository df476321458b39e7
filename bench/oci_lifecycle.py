"""OCI lifecycle: ``kit create`` + ``kit start`` + ``kit delete`` against runc's, same bundle.

The bundle is ``runc spec`` with the process set to /bin/true, on a root filesystem built by
kit from the host's programs. One sample is the three commands in a row (delete --force, so a
container that has not finished exiting yet is not an error for either runtime). Runs
alternate between the two (and a baseline kit, with KIT_BENCH_BASELINE: see bench/common.py).

    python3 bench/oci_lifecycle.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    compile_bytecode,
    interleaved,
    kit_executable,
    kit_variants,
    machine,
    report,
    require,
    scratch_dir,
)


def runc_bundle(base: Path, rootfs: Path) -> Path:
    bundle = base / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def lifecycle(runtime: list[str], bundle: Path, name: str, env: dict[str, str] | None) -> float:
    """create + start + delete --force; seconds for the three."""
    quiet = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "stdin": subprocess.DEVNULL,
    }
    started = time.perf_counter()
    subprocess.run(
        [*runtime, "create", "--bundle", str(bundle), name], check=True, env=env, **quiet
    )
    subprocess.run([*runtime, "start", name], check=True, env=env, **quiet)
    subprocess.run([*runtime, "delete", "--force", name], check=True, env=env, **quiet)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    require("runc")
    compile_bytecode()
    from kit.rootfs import build_rootfs

    base = scratch_dir("kit-bench-oci-")
    try:
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "host")
        bundle = runc_bundle(base, rootfs)
        env = {**os.environ, "KIT_ROOT": str(base / "kit-root")}
        kit = kit_executable()
        runc = ["runc", "--root", str(base / "runc-state")]
        contenders = {
            "runc create+start+delete": lambda i: lifecycle(runc, bundle, f"r{i + 10}", None),
        }
        for n, (suffix, variant_env) in enumerate(kit_variants(env).items()):

            def cycle(i: int, variant_env: dict[str, str] = variant_env, n: int = n) -> float:
                return lifecycle(kit, bundle, f"k{n}-{i + 10}", variant_env)

            contenders["kit create+start+delete" + suffix] = cycle
        samples = interleaved(contenders, runs=args.runs)
        print(f"machine: {machine()}; kit: {' '.join(kit)}; runs: {args.runs} each")
        report("OCI lifecycle, /bin/true", samples, baseline="runc create+start+delete")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
