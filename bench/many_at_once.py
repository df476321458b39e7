"""Twenty containers started at once: all must succeed, the state must stay consistent.

kit: 20 ``kit run -d --rootfs R sleep 60`` launched concurrently; then ``kit ps --json`` must
list 20 running containers with distinct ids and PIDs, every state.json must parse, and all
20 must be removable. runc: 20 ``runc run -d`` of the same root filesystem (one bundle
each, since runc keeps the process in config.json). Reported: the wall time from launch to
the last runtime returning, median over rounds, and the ratio.

    python3 bench/many_at_once.py [--rounds N] [--count N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    QUIET,
    compile_bytecode,
    kit_executable,
    kit_variants,
    machine,
    report,
    require,
    runc_bundle,
    scratch,
)


def burst(commands: list[list[str]], env: dict[str, str] | None = None) -> tuple[float, list[int]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        codes = list(
            pool.map(
                lambda c: subprocess.run(c, env=env, check=False, **QUIET).returncode, commands
            )
        )
    return time.perf_counter() - started, codes


def check_kit_state(kit: list[str], env: dict[str, str], count: int) -> None:
    rows = json.loads(
        subprocess.run([*kit, "ps", "--json"], env=env, capture_output=True, check=True).stdout
    )
    running = [r for r in rows if r["status"] == "running"]
    assert len(running) == count, f"{len(running)} of {count} running"
    assert len({r["id"] for r in running}) == count and len({r["pid"] for r in running}) == count
    for path in Path(env["KIT_ROOT"], "run", "containers").glob("*/state.json"):
        json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    require("runc")
    compile_bytecode()
    from kit.rootfs import build_rootfs

    with scratch("kit-bench-concurrent-") as base:
        kit = kit_executable()
        env = {**os.environ, "KIT_ROOT": str(base / "kit-root")}
        variants = kit_variants(env)
        runc = ["runc", "--root", str(base / "runc-state")]
        runc_label = f"runc run -d x{args.count}"
        samples: dict[str, list[float]] = {runc_label: []}
        samples.update({f"kit run -d x{args.count}{suffix}": [] for suffix in variants})
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "busybox")
        # One bundle per container: runc keeps the process in config.json.
        made = [
            runc_bundle(base / f"bundle{i}", rootfs, ["sleep", "60"], readonly=True)
            for i in range(args.count)
        ]
        for round_number in range(args.rounds):
            names = [f"r{round_number}-{i}" for i in range(args.count)]
            seconds, codes = burst(
                [
                    [*runc, "run", "-d", "--bundle", str(b), n]
                    for b, n in zip(made, names, strict=True)
                ]
            )
            assert codes == [0] * args.count, f"runc: {codes}"
            samples[runc_label].append(seconds)
            for name in names:
                subprocess.run([*runc, "delete", "--force", name], check=True, **QUIET)
            for suffix, variant_env in variants.items():
                seconds, codes = burst(
                    [
                        [*kit, "run", "-d", "--rootfs", str(rootfs), "sleep", "60"]
                        for _ in range(args.count)
                    ],
                    variant_env,
                )
                assert codes == [0] * args.count, f"kit{suffix}: {codes}"
                samples[f"kit run -d x{args.count}{suffix}"].append(seconds)
                check_kit_state(kit, variant_env, args.count)
                ids = subprocess.run(
                    [*kit, "ps", "-q", "--no-trunc"],
                    env=variant_env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                subprocess.run([*kit, "rm", "-f", *ids], env=variant_env, check=True, **QUIET)
        print(
            f"machine: {machine()}; {args.count} containers at once, {args.rounds} rounds; "
            "every round: all succeeded, state consistent"
        )
        report(
            f"{args.count} concurrent detached starts (wall time)",
            samples,
            baseline=runc_label,
        )


if __name__ == "__main__":
    main()
