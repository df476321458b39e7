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
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
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
    time_command,
)

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def setup(base: Path) -> tuple[list[str], dict[str, str], dict[str, Path]]:
    (base / "containers.conf").write_text(
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        f'events_logfile_path = "{base}/events.log"\ntmp_dir = "{base}/tmp"\n'
        f'volume_path = "{base}/volumes"\n[network]\nnetwork_config_dir = "{base}/net"\n'
    )
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{base}/runroot"\ngraphroot = "{base}/root"\n'
    )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(base / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
    }
    env.pop("KIT_ROOT", None)
    podman = ["podman", "--root", str(base / "root"), "--runroot", str(base / "runroot")]
    # One runtime script per kit to time (this checkout, and the baseline's if one is given).
    kit = " ".join(kit_executable())
    runtimes: dict[str, Path] = {}
    for n, (suffix, variant_env) in enumerate(kit_variants({}).items()):
        runtime = base / f"kit-runtime{n}"
        path = f"PYTHONPATH={variant_env['PYTHONPATH']} " if "PYTHONPATH" in variant_env else ""
        runtime.write_text(f'#!/bin/sh\n{path}KIT_ROOT={base}/kit-root exec {kit} "$@"\n')
        runtime.chmod(0o755)
        runtimes[suffix] = runtime
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
    return podman, env, runtimes


def _cmdlines() -> list[bytes]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as f:
                found.append(f.read())
    return found


def _cleaning(cmdline: bytes, marker: bytes) -> bool:
    """A `podman ... container cleanup` of this store (not a conmon naming it as its exit
    command)."""
    words = cmdline.split(b"\0")
    return words[0].endswith(b"podman") and b"cleanup" in words and any(marker in w for w in words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    require("podman")
    require("runc")
    compile_bytecode()
    base = scratch_dir("kit-bench-podman-")
    cgroups_before = set(Path("/sys/fs/cgroup").glob("*/libpod_parent"))
    podman: list[str] = []
    env: dict[str, str] = {}
    try:
        podman, env, runtimes = setup(base)

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
            # finish (it can unmount the next container's rootfs; see tests/test_podman.py).
            marker = f"{base}/root".encode()
            while any(_cleaning(line, marker) for line in _cmdlines()):
                time.sleep(0.05)
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
        if podman:
            with contextlib.suppress(OSError):
                subprocess.run([*podman, "rm", "-af"], env=env, capture_output=True)
                subprocess.run([*podman, "rmi", "-af"], env=env, capture_output=True)
        from kit import mounts

        left = [m.mount_point for m in mounts.read() if m.mount_point.startswith(str(base))]
        for point in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        # podman's cgroupfs manager made /libpod_parent (and conmon/ in it): remove new ones.
        for parent in set(Path("/sys/fs/cgroup").glob("*/libpod_parent")) - cgroups_before:
            for child in [c for c in parent.iterdir() if c.is_dir()]:
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()


if __name__ == "__main__":
    main()
