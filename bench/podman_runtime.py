"""podman with kit as its OCI runtime, against podman with runc: ``podman run --rm IMAGE sh -c :``.

A private podman store (its own --root, --runroot, containers.conf and storage.conf in a
scratch directory); the image is a busybox root filesystem built and saved by kit (``kit
build``, ``kit save``) and pulled with the ``oci:`` transport. Both runtimes run the same
image with the same flags; runs alternate. podman's own work (conmon, storage, the overlay
mount) is in both; the difference is the runtime.

    python3 bench/podman_runtime.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
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
    scratch,
    time_command,
)

from kit.podman import PrivatePodman, forget_podman_cgroups, podman_cgroups

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def setup(store: PrivatePodman) -> dict[str, Path]:
    """The image and the anchor container in ``store``; the runtime script of each kit to time
    (this checkout, and the baseline's if one is given), by label suffix."""
    base, podman, env = store.base, store.argv, store.env
    kit = " ".join(kit_executable())
    runtimes: dict[str, Path] = {}
    for n, (suffix, variant_env) in enumerate(kit_variants({}).items()):
        path = f"PYTHONPATH={variant_env['PYTHONPATH']} " if "PYTHONPATH" in variant_env else ""
        runtimes[suffix] = store.kit_runtime(
            kit, base / "kit-root", name=f"kit-runtime{n}", environment=path
        )
    # The image: busybox, built and saved by kit.
    from kit.rootfs import build_rootfs

    context = base / "context"
    context.mkdir()
    build_rootfs(base / "busybox", "busybox")
    with tarfile.open(context / "root.tar", "w") as tar:
        tar.add(base / "busybox", arcname=".")
    (context / "Kitfile").write_text('FROM scratch\nADD root.tar /\nCMD ["/bin/sh"]\n')
    kit_env = {**os.environ, "KIT_ROOT": str(base / "build-root")}
    quiet = {"check": True, "capture_output": True}
    subprocess.run(
        [*kit_executable(), "build", "-q", "-t", "b:1", str(context)], env=kit_env, **quiet
    )
    subprocess.run(
        [*kit_executable(), "save", "-o", str(base / "oci"), "b:1"], env=kit_env, **quiet
    )
    pulled = subprocess.run(
        [*podman, "pull", "-q", f"oci:{base}/oci:1"], env=env, text=True, **quiet
    ).stdout.split()[-1]
    subprocess.run([*podman, "tag", pulled, "localhost/b:1"], env=env, **quiet)
    # One container (runc's) stays running throughout: podman's asynchronous clean-up of a
    # --rm container otherwise unmounts the overlay driver's home when it unmounts the last
    # container, detaching the rootfs of the next container while it is being created (see
    # tests/test_podman.py, Podman.keep_storage_mounted).
    subprocess.run(
        [
            *podman,
            "--runtime",
            "runc",
            "run",
            "-d",
            "--name",
            "anchor",
            "--network",
            "none",
            *ULIMITS,
            "localhost/b:1",
            "sleep",
            "100000",
        ],
        env=env,
        **quiet,
    )
    return runtimes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    require("podman")
    require("runc")
    compile_bytecode()
    with scratch("kit-bench-podman-") as base:
        cgroups_before = podman_cgroups()
        store = PrivatePodman(base)
        podman, env = store.argv, store.env
        try:
            runtimes = setup(store)

            def run(path: str) -> list[str]:
                return [
                    *podman,
                    "--runtime",
                    path,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    *ULIMITS,
                    "localhost/b:1",
                    "sh",
                    "-c",
                    ":",
                ]

            def settled(argv: list[str]) -> float:
                # Not timed: let podman's asynchronous clean-up of the previous --rm container
                # finish (it can unmount the next container's rootfs; see kit.podman).
                store.wait_for_cleanup()
                return time_command(argv, env=env)

            contenders = {"podman run --runtime runc": lambda i: settled(run("runc"))}
            for suffix, runtime in runtimes.items():
                contenders["podman run --runtime kit" + suffix] = lambda i, r=runtime: settled(
                    run(str(r))
                )
            samples = interleaved(contenders, runs=args.runs, warmup=2)
            print(f"machine: {machine()}; runs: {args.runs} each")
            report("podman run --rm IMAGE sh -c :", samples, baseline="podman run --runtime runc")
        finally:
            subprocess.run([*podman, "rm", "-af"], env=env, capture_output=True)
            subprocess.run([*podman, "rmi", "-af"], env=env, capture_output=True)
            store.unmount_leftovers()
            forget_podman_cgroups(cgroups_before)


if __name__ == "__main__":
    main()
