"""podman, a real container engine, running containers through kit as its OCI runtime.

podman talks to its runtime the way it talks to runc: ``conmon`` calls ``kit create --bundle
... --pid-file ...``, then podman calls ``kit start``, ``kit state``, ``kit kill``, ``kit exec
--process ...`` and ``kit delete --force``. Everything podman keeps lives in a private store
under the test's temp dir (``--root``, ``--runroot``, and a containers.conf whose tmp, volume,
network and events paths point there too): nothing goes to the host's podman store.

The image is built by kit and saved by kit as an OCI layout (``kit save``), which podman
pulls with the ``oci:`` transport.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.podman import PrivatePodman, forget_podman_cgroups, podman_cgroups

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")

ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
IMAGE = "localhost/kitbox:1"
ANCHOR = "storage-anchor"


class Podman:
    """podman with a private store, and kit (through a wrapper script) as a runtime."""

    def __init__(self, base: Path, rootfs: Path) -> None:
        self.base = base
        self.kit_root = base / "kit-root"
        self.store = PrivatePodman(base)
        self.env = self.store.env
        # podman needs the runtime as one executable path: a wrapper that runs this kit.
        self.runtime = self.store.kit_runtime(f"{sys.executable} -m kit", self.kit_root)
        self._load_image(rootfs)
        self.keep_storage_mounted()

    def __call__(
        self, *args: str, check: bool = True, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        options: dict[str, object] = {"capture_output": True, "text": True, "timeout": 120}
        options.update(kw)
        result = subprocess.run(
            [*self.store.argv, *args],
            env=self.env,
            check=False,
            **options,  # type: ignore[arg-type]
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
        return result

    def run(
        self, *args: str, runtime: str = "kit", **kw: object
    ) -> subprocess.CompletedProcess[str]:
        path = str(self.runtime) if runtime == "kit" else runtime
        self.settle()
        return self("--runtime", path, "run", "--network", "none", *ULIMITS, *args, **kw)

    def settle(self) -> None:
        """Wait until podman's own clean-up of earlier containers has finished (see
        :meth:`keep_storage_mounted`, which removes the cause; this is the second belt)."""
        self.store.wait_for_cleanup()

    def keep_storage_mounted(self) -> None:
        """Keep one container (runc's) running for the whole module.

        `podman run --rm` returns before conmon's exit command (`podman container cleanup`)
        is done; when that clean-up unmounts the storage of the *last* mounted container, it
        also unmounts the overlay driver's home, detaching the rootfs of a container being
        created at that moment (its runtime then finds an empty directory: podman races
        itself, with runc as with kit). With one container always mounted, the home stays.
        """
        self(
            "--runtime",
            "runc",
            "run",
            "-d",
            "--name",
            ANCHOR,
            "--network",
            "none",
            *ULIMITS,
            IMAGE,
            "sleep",
            "100000",
        )

    def _load_image(self, rootfs: Path) -> None:
        context = self.base / "context"
        context.mkdir()
        with tarfile.open(context / "root.tar", "w") as tar:
            tar.add(rootfs, arcname=".")
        (context / "Kitfile").write_text('FROM scratch\nADD root.tar /\nCMD ["/bin/sh"]\n')
        env = {**os.environ, "KIT_ROOT": str(self.base / "build-root")}
        kit = [sys.executable, "-m", "kit"]
        subprocess.run(
            [*kit, "build", "-q", "-t", "kitbox:1", str(context)],
            env=env,
            check=True,
            capture_output=True,
        )
        layout = self.base / "layout"
        subprocess.run(
            [*kit, "save", "-o", str(layout), "kitbox:1"], env=env, check=True, capture_output=True
        )
        pulled = self("pull", "-q", f"oci:{layout}:1").stdout.strip().splitlines()[-1]
        self("tag", pulled, IMAGE)

    def kit_containers(self) -> list[str]:
        base = self.kit_root / "run" / "containers"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []

    def calls(self) -> list[str]:
        return self.store.calls()


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Podman]:
    libpod_before = podman_cgroups()
    engine = Podman(tmp_path_factory.mktemp("podman"), busybox_rootfs)
    try:
        yield engine
    finally:
        engine("rm", "-af", "-t", "0", check=False)
        engine("rmi", "-af", check=False)
        # podman's overlay mounts below the private store (mounted before the first test's
        # leak guard looked), and the /libpod_parent cgroups it made: leave the host as we
        # found it.
        engine.store.unmount_leftovers()
        forget_podman_cgroups(libpod_before)


@pytest.fixture
def clean(podman: Podman) -> Iterator[None]:
    yield
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    others = [n for n in names if n != ANCHOR]
    if others:
        podman("rm", "-f", "-t", "0", *others, check=False)
    assert podman.kit_containers() == []  # podman deleted every container it made in kit


pytestmark = [pytestmark, pytest.mark.usefixtures("clean")]


def test_podman_runs_a_container_through_kit(podman: Podman) -> None:
    before = len(podman.calls())
    result = podman.run(
        "--rm", IMAGE, "sh", "-c", "echo hello from $(hostname); exit 4", check=False
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith("hello from ")
    commands = [line.split()[0] for line in podman.calls()[before:]]
    assert commands[:2] == ["create", "start"] and "delete" in commands
    assert podman.kit_containers() == []
    # The container's cgroups (podman's cgroupsPath, including kit's devices cgroup) are gone.
    anchor = podman("inspect", "--format", "{{.Id}}", ANCHOR).stdout.strip()
    left = [
        p for p in Path("/sys/fs/cgroup").glob("*/libpod_parent/libpod-*") if anchor not in p.name
    ]
    assert left == []


def test_podman_stdin_and_terminal(podman: Podman) -> None:
    piped = podman.run("--rm", "-i", IMAGE, "sh", "-c", "read x; echo got $x", input="hello\n")
    assert piped.stdout == "got hello\n"
    tty = podman.run("--rm", "-t", IMAGE, "sh", "-c", "tty; stty size", stdin=subprocess.DEVNULL)
    assert tty.stdout.split() == ["/dev/pts/0", "24", "80"]


def test_podman_detached_exec_stop_rm(podman: Podman) -> None:
    podman.run("-d", "--name", "web", IMAGE, "sleep", "1000")
    inspect = json.loads(podman("inspect", "web").stdout)[0]
    pid = inspect["State"]["Pid"]
    assert inspect["State"]["Running"] is True and pid > 0
    kit_state = json.loads(
        subprocess.run(
            [str(podman.runtime), "state", inspect["Id"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert kit_state["status"] == "running" and kit_state["pid"] == pid
    out = podman("exec", "web", "sh", "-c", "echo exec $$; cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.stdout.split()[:2] == ["exec", out.stdout.split()[1]] and "sleep 1000" in out.stdout
    assert int(out.stdout.split()[1]) > 1
    assert podman("exec", "web", "sh", "-c", "exit 6", check=False).returncode == 6
    podman("stop", "-t", "1", "web")
    stopped = json.loads(podman("inspect", "web").stdout)[0]["State"]
    assert stopped["Running"] is False and stopped["ExitCode"] == 137
    podman("rm", "web")
    assert podman.kit_containers() == []


def test_podman_with_runc_and_with_kit_gives_the_same_container(podman: Podman) -> None:
    report = (
        "grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
        "/proc/self/status; "
        "grep -E ' /(proc|sys|dev|dev/pts|dev/shm|dev/mqueue|etc/hostname) ' /proc/self/mountinfo "
        "| cut -d' ' -f5,6; ls /proc/acpi /sys/firmware 2>&1 | head -3"
    )
    ours = podman.run("--rm", "--hostname", "same", IMAGE, "sh", "-c", report).stdout
    theirs = podman.run(
        "--rm", "--hostname", "same", IMAGE, "sh", "-c", report, runtime="runc"
    ).stdout

    def normal(text: str) -> list[str]:
        return sorted(
            line.replace("relatime,", "").replace(",relatime", "") for line in text.splitlines()
        )

    assert normal(ours) == normal(theirs)


def test_podman_device_rules_hold_under_kit(podman: Podman) -> None:
    result = podman.run(
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "mknod /dev/disk b 8 0 && echo made; head -c1 /dev/disk",
        check=False,
    )
    assert "made" in result.stdout and "Operation not permitted" in result.stderr
