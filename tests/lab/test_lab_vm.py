"""A classroom VM, for real: a fresh Debian 12 and a fresh Ubuntu 24.04, each set up by
scripts/cloud-init.yaml.

The "VM" is a kit container on a root filesystem made with debootstrap from the distribution's
own packages, plus cloud-init (what a cloud image carries). It gets a filesystem of its own (a
tmpfs, as a VM has its own disk), cloud-init runs the real user-data from a NoCloud seed, and
lab-setup.sh installs packages and kit from the network. Then, with the network cut off, the
tests check what a class needs: the tutorial's plain runner passes every lesson as root, pull
lessons work against the local registry, each student has their own subordinate ids and state,
and a second run of the set-up changes nothing.

Alone: ``sudo python3 -m pytest -m lab`` (about a minute and a half; the first run also builds
the two images, about a minute each, cached in ``$KIT_TEST_CACHE`` or ``~/.cache/kit-tests``).
It needs debootstrap, the Debian mirror apt uses, archive.ubuntu.com and PyPI.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit import mounts

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KIT_TEST_CACHE") or Path.home() / ".cache" / "kit-tests")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: A VM runs kit as root with every privilege: so does the container that plays the VM.
PRIVILEGED = (
    "--cap-add",
    "ALL",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--security-opt",
    "no-new-privileges=false",
    # A VM reaches every device. runc in it allows /dev/net/tun (c 10:200) to its containers,
    # and a v1 device cgroup can never allow what its parent's denies.
    "--device-cgroup-rule",
    "a *:* rwm",
)

#: cloud-init in a container: the NoCloud seed only, no network configuration, and only the
#: modules the user-data uses (none that resize disks, write ssh keys or touch interfaces).
CLOUD_CFG = """\
datasource_list: [NoCloud]
network: {{config: disabled}}
cloud_init_modules: [write_files]
cloud_config_modules: [runcmd]
cloud_final_modules: [package_update_upgrade_install, scripts_user, final_message]
system_info:
  distro: {distro}
  paths: {{cloud_dir: /var/lib/cloud/, templates_dir: /etc/cloud/templates/}}
"""


@dataclass(frozen=True)
class Distro:
    """A distribution classroom VMs run, and how to debootstrap it."""

    name: str
    suite: str
    family: str
    components: str = "main"
    #: debootstrap's script for the suite, when this debootstrap does not know the suite.
    script: str | None = None
    #: Debian's debootstrap has no Ubuntu keyring: it cannot check the base packages' signatures
    #: (the image's own apt checks every later download with the image's ubuntu-keyring).
    check_gpg: bool = True

    def mirror(self) -> str:
        if self.family == "ubuntu":
            return "http://archive.ubuntu.com/ubuntu"
        return debian_mirror(self.suite)


DISTROS = (
    Distro("debian-12", "bookworm", "debian"),
    Distro(
        "ubuntu-24.04",
        "noble",
        "ubuntu",
        components="main,universe",  # umoci, skopeo and docker-registry are in universe
        script="/usr/share/debootstrap/scripts/gutsy",  # every Ubuntu suite uses this one
        check_gpg=False,
    ),
)


def debian_mirror(suite: str) -> str:
    """The Debian archive this machine's apt uses (deb822 or one-line sources)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        text = path.read_text() if path.is_file() else ""
        for uri, suites in re.findall(r"^URIs:\s*(\S+)\s*\nSuites:\s*([^\n]+)", text, re.M):
            if suite in suites.split():
                return uri
        for uri, listed in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if listed == suite:
                return uri
    return "http://deb.debian.org/debian"


def kit(
    rootfs: Path, kit_root: Path, script: str, *, net: str = "none", timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``kit run`` a shell script in ``rootfs`` with a VM's privileges."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kit",
            "run",
            "--rm",
            "--rootfs",
            str(rootfs),
            "--net",
            net,
            *PRIVILEGED,
            "-e",
            f"PATH={PATH}",
            "-e",
            "HOME=/root",
            "-e",
            "DEBIAN_FRONTEND=noninteractive",
            "/bin/sh",
            "-c",
            f"{_cgroup_boot()}\n{script}",
        ],
        env={**os.environ, "KIT_ROOT": str(kit_root)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _cgroup_boot() -> str:
    """Shell lines that mount the cgroup filesystems as the VM's init would at boot, in the
    layout the kernel allows here: the host's (a controller bound to a v1 hierarchy cannot
    also appear in v2). The container's own cgroup namespace makes its cgroup their root."""
    lines = ["mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup /sys/fs/cgroup"]
    for entry in mounts.read():
        if entry.fstype not in ("cgroup", "cgroup2"):
            continue
        where = f"/sys/fs/cgroup/{Path(entry.mount_point).name}"
        if entry.mount_point == "/sys/fs/cgroup":  # v2 only (a unified host)
            lines = ["mount -t cgroup2 cgroup2 /sys/fs/cgroup"]
            break
        options = [o for o in entry.super_options if o not in ("rw", "ro")]
        kind = "-t cgroup2" if entry.fstype == "cgroup2" else f"-t cgroup -o {','.join(options)}"
        lines.append(f"mkdir -p {where} && mount {kind} cgroup {where}")
    return " && ".join(lines) + " || echo 'cgroup mounts failed' >&2"


def _site_files(rootfs: Path) -> None:
    """What an image built on this network carries: its resolver and its CA certificates
    (this network inspects TLS; pip would refuse PyPI without them), and, as in every
    container image, a policy-rc.d that stops packages from starting services."""
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    certs = rootfs / "usr" / "local" / "share" / "ca-certificates"
    certs.mkdir(parents=True, exist_ok=True)
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, certs / cert.name)
    policy = rootfs / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def _build_image(distro: Distro, dest: Path, kit_root: Path) -> None:
    """debootstrap a minimal system, then add cloud-init with apt, as a cloud image has."""
    building = dest.with_name(f"{dest.name}.build")  # under the cache lock
    shutil.rmtree(building, ignore_errors=True)
    command = ["debootstrap", "--variant=minbase", f"--components={distro.components}"]
    if not distro.check_gpg:
        command.append("--no-check-gpg")
    command += [distro.suite, str(building), distro.mirror()]
    if distro.script:
        command.append(distro.script)
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    _site_files(building)
    done = kit(
        building,
        kit_root,
        # ca-certificates' own set-up adds the site certificates in /usr/local/share
        "apt-get update -q && "
        "apt-get install -y -q --no-install-recommends cloud-init ca-certificates && "
        "apt-get clean && rm -rf /var/lib/apt/lists/*",
        net="host",
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    building.rename(dest)


@pytest.fixture(scope="module")
def kit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-kit-root")


@pytest.fixture(scope="module", params=DISTROS, ids=lambda d: d.name)
def distro(request: pytest.FixtureRequest) -> Distro:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def image(distro: Distro, kit_root: Path) -> Path:
    """The cached cloud image (built once per machine; a lock keeps runs apart)."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = CACHE / f"{distro.name}-cloud-{arch}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not dest.is_dir():
            _build_image(distro, dest, kit_root)
    return dest


@dataclass
class VM:
    """The provisioned VM: its root filesystem and what first boot printed."""

    root: Path
    kit_root: Path
    boot: subprocess.CompletedProcess[str]

    def run(self, script: str, *, net: str = "none") -> subprocess.CompletedProcess[str]:
        return kit(self.root, self.kit_root, script, net=net)


@pytest.fixture(scope="module")
def vm(
    distro: Distro, image: Path, kit_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VM]:
    """A fresh copy of the image on a filesystem of its own, booted once with cloud-init."""
    root = tmp_path_factory.mktemp("lab") / "vm"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "kit-lab-vm", str(root)], check=True)
    try:
        subprocess.run(["cp", "-a", f"{image}/.", str(root)], check=True)
        _site_files(root)
        (root / "etc" / "cloud" / "cloud.cfg").write_text(CLOUD_CFG.format(distro=distro.family))
        seed = root / "var" / "lib" / "cloud" / "seed" / "nocloud"
        seed.mkdir(parents=True)
        shutil.copy(REPO / "scripts" / "cloud-init.yaml", seed / "user-data")
        (seed / "meta-data").write_text("instance-id: kit-lab-test\nlocal-hostname: kit-lab\n")
        # kit as the working tree has it (an existing /opt/kit is used, not cloned).
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, files):
            source = REPO / os.fsdecode(name)
            if source.is_file():
                target = root / "opt" / "kit" / os.fsdecode(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        boot = kit(
            root,
            kit_root,
            "cloud-init init --local && cloud-init init && cloud-init modules --mode config && "
            "cloud-init modules --mode final",
            net="host",
        )
        yield VM(root, kit_root, boot)
    finally:
        for _ in range(3):
            if str(root) not in {m.mount_point for m in mounts.read()}:
                break
            with contextlib.suppress(subprocess.CalledProcessError):
                subprocess.run(["umount", str(root)], check=True, capture_output=True)


# ----------------------------------------------------------------------------------------------
# First boot
# ----------------------------------------------------------------------------------------------


def test_cloud_init_ran_the_user_data_without_errors(vm: VM) -> None:
    result = json.loads((vm.root / "var/lib/cloud/data/result.json").read_text())
    output = (vm.root / "var/log/cloud-init-output.log").read_text()
    assert result["v1"]["errors"] == [], output[-4000:]
    assert "lab-setup: done:" in output
    assert "kit lab ready after" in output  # final_message: every module ran
    # What the set-up installed, for everyone.
    for command in ("kit", "kit-tutorial", "kit-registry"):
        path = vm.root / "usr/local/bin" / command
        assert path.stat().st_mode & 0o005 == 0o005, command  # others may read and run it
    for package in (
        "busybox-static",
        "umoci",
        "skopeo",
        "runc",
        "podman",
        "uidmap",
        "docker-registry",
    ):
        status = vm.run(f"dpkg-query -W -f='${{Status}}' {package}")
        assert status.stdout == "install ok installed", package
    assert (vm.root / "var/lib/kit-lab/seed/index.json").is_file()  # the offline seed image


def test_the_user_data_is_valid_for_cloud_init(vm: VM) -> None:
    done = vm.run("cloud-init schema --config-file /var/lib/cloud/seed/nocloud/user-data")
    assert done.returncode == 0, done.stdout + done.stderr
    # cloud-init 22 says "Valid cloud-config", 24 "Valid schema"
    valid = r"Valid (cloud-config|schema):? /var/lib/cloud/seed/nocloud/user-data"
    assert re.match(valid, done.stdout), done.stdout


def test_students_have_accounts_and_ranges_of_their_own(vm: VM) -> None:
    env = dict(
        line.split("=", 1) for line in (vm.root / "etc/kit/lab.env").read_text().splitlines()
    )
    count = int(env["KIT_STUDENTS"])
    ranges: dict[str, tuple[int, int]] = {}
    for line in (vm.root / "etc/subuid").read_text().splitlines():
        name, start, size = line.split(":")
        ranges[name] = (int(start), int(size))
    students = [f"student{i}" for i in range(1, count + 1)]
    assert set(students) <= set(ranges)
    spans = sorted((start, start + size) for start, size in ranges.values())
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    assert (vm.root / "etc/subgid").read_text().count("student") == count
    for student in students:
        assert (vm.root / "home" / student).is_dir()


# ----------------------------------------------------------------------------------------------
# Class time: no network
# ----------------------------------------------------------------------------------------------


def test_the_network_is_really_cut_off(vm: VM) -> None:
    done = vm.run(
        "python3 -c 'import socket; socket.create_connection((\"deb.debian.org\", 80), 5)'"
    )
    assert done.returncode != 0
    assert "gaierror" in done.stderr or "unreachable" in done.stderr, done.stderr


def test_a_second_run_changes_nothing_and_needs_no_network(vm: VM) -> None:
    subuid = (vm.root / "etc/subuid").read_bytes()
    wrapper = (vm.root / "usr/local/bin/kit").stat().st_mtime_ns
    # The exact commands cloud-init ran (its runcmd script), again, offline.
    done = vm.run("sh -e /var/lib/cloud/instance/scripts/runcmd")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lab-setup: nothing to change: this machine is set up" in done.stdout
    assert "+ " not in done.stdout  # no command that changes anything ran
    assert (vm.root / "etc/subuid").read_bytes() == subuid
    assert (vm.root / "usr/local/bin/kit").stat().st_mtime_ns == wrapper


def test_every_lesson_passes_offline_as_root(vm: VM) -> None:
    doctor = vm.run("kit doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "This machine can run kit's containers." in doctor.stdout
    done = vm.run("kit-tutorial --plain all --no-trace")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summaries = re.findall(r"══ lesson (\d+): (\d+)/(\d+) steps passed", done.stdout)
    assert len(summaries) >= 4, done.stdout[-3000:]
    for number, passed, total in summaries:
        assert passed == total, f"lesson {number}: {passed}/{total}"


def test_pull_lessons_work_offline_from_the_local_registry(vm: VM) -> None:
    done = vm.run(
        "kit-registry start && kit doctor --require registry:local,overlay && "
        "kit pull localhost:5000/kit/busybox:latest && "
        "kit run --rm localhost:5000/kit/busybox:latest sh -c 'echo pulled offline'"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Everything this lesson needs is here." in done.stdout
    assert done.stdout.strip().endswith("pulled offline")


def test_each_student_runs_rootless_with_their_own_ids_and_state(vm: VM) -> None:
    starts: dict[str, str] = {}
    roots: dict[str, str] = {}
    for student in ("student1", "student2"):
        done = vm.run(
            f"su - {student} -c '"
            "kit doctor --json > ~/doctor.json; "
            "kit doctor --require userns,subids,containers && "
            "kit rootfs build ~/rootfs >/dev/null && "
            'kit run --rm --rootfs ~/rootfs /bin/sh -c "cat /proc/self/uid_map"\''
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Everything this lesson needs is here." in done.stdout
        rows = [line.split() for line in done.stdout.split("here.", 1)[1].strip().splitlines()]
        subuid = next(
            line.split(":")[1]
            for line in (vm.root / "etc/subuid").read_text().splitlines()
            if line.startswith(f"{student}:")
        )
        assert ["1", subuid, "65536"] in rows, rows  # ids 1.. inside: the student's own range
        starts[student] = subuid
        report = json.loads((vm.root / "home" / student / "doctor.json").read_text())
        overlay = next(c for c in report["checks"] if c["name"] == "overlayfs")
        roots[student] = overlay["data"]["data_root"]
        assert roots[student] == f"/home/{student}/.local/share/kit"
    assert starts["student1"] != starts["student2"]
    assert roots["student1"] != roots["student2"]


def test_the_instructor_validates_the_image_before_class(vm: VM) -> None:
    done = vm.run("kit-tutorial --check-all")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"(\d+)/\1 lessons pass on this machine\.", done.stdout), done.stdout
    assert not list((vm.root / "var/lib/kit").glob("check-all-*"))  # its scratch root is gone


def test_root_mode_students_keep_their_state_apart(vm: VM) -> None:
    # What `sudo kit-tutorial` gives student1 (minbase has no sudo: SUDO_USER is what it sets).
    done = vm.run(
        "SUDO_USER=student1 kit-tutorial --plain 2 --no-trace >/dev/null && "
        "SUDO_USER=student1 kit-tutorial --report --json"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    answer = json.loads(done.stdout)
    assert answer["learner"] == "student1" and answer["mode"] == "root"
    assert answer["kit_root"] == "/var/lib/kit/users/student1"
    assert (vm.root / "var/lib/kit/users/student1/lessons/student1").is_dir()
    assert not (vm.root / "var/lib/kit/users/student2").exists()


def test_a_rootless_student_is_told_what_blocks_a_root_lesson(vm: VM) -> None:
    done = vm.run("su - student2 -c 'kit-tutorial --plain 1 --no-trace'")
    assert done.returncode == 1
    assert "This lesson cannot run here yet:" in done.stdout
    assert "real root (root): running as uid" in done.stdout
    assert "Fix: run the tutorial as root: sudo kit-tutorial" in done.stdout
