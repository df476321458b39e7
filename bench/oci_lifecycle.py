"""OCI lifecycle: ``kit create`` + ``kit start`` + ``kit delete`` against runc's, same bundle.

The bundle is ``runc spec`` with the process set to /bin/true, on a root filesystem built by
kit from the host's programs. One sample is the three commands in a row (delete --force, so a
container that has not finished exiting yet is not an error for either runtime). Runs
alternate between the two (and a baseline kit, with KIT_BENCH_BASELINE: see bench/common.py).

    python3 bench/oci_lifecycle.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    QUIET,
    compile_bytecode,
    interleaved,
    kit_executable,
    kit_variants,
    machine,
    report,
    require,
    runc_bundle,
    scratch,
)


def lifecycle(runtime: list[str], bundle: Path, name: str, env: dict[str, str] | None) -> float:
    """create + start + delete --force; seconds for the three."""
    started = time.perf_counter()
    subprocess.run(
        [*runtime, "create", "--bundle", str(bundle), name], check=True, env=env, **QUIET
    )
    subprocess.run([*runtime, "start", name], check=True, env=env, **QUIET)
    subprocess.run([*runtime, "delete", "--force", name], check=True, env=env, **QUIET)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    require("runc")
    compile_bytecode()
    from kit.rootfs import build_rootfs

    with scratch("kit-bench-oci-") as base:
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "host")
        bundle = runc_bundle(base / "bundle", rootfs, ["/bin/true"], readonly=True)
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


if __name__ == "__main__":
    main()
