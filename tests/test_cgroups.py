"""cgroups: limits the kernel enforces on the whole container.

Enforcement is tested on this machine's cgroup v1 controllers (a memory hog is OOM-killed,
a fork bomb stops at the pids limit), each with the control off as well, to show the probe
can fail. The v2 limit code is tested on its *logic* only (what it writes where), against a
fake directory tree: these tests claim nothing about a kernel enforcing v2 limits. (The v2
device program needs no controller, so tests/test_devices.py runs it for real on this
machine's unified tree.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import kit_command, kit_popen
from lifecycle_helpers import wait_for

from kit.cgroups import layout, limits
from kit.cgroups.base import Directory
from kit.cgroups.manager import cgroup_path, choose
from kit.cgroups.v2 import V2Cgroup, shares_to_weight
from kit.errors import KitError
from kit.paths import root_tag
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.runtime.lifecycle import remove_cgroup_dir
from kit.spec import CpuResources, MemoryResources, PidsResources, Resources

pytestmark = pytest.mark.usefixtures("kit_root")

HOST = layout.read()
V1 = HOST.version_for(("memory", "pids", "cpu")) == 1


def run(rootfs: Path, *command: str, options: tuple[str, ...] = (), rm: bool = True):  # type: ignore[no-untyped-def]
    flags = ("--rm",) if rm else ()
    return kit_command("run", *flags, *options, "--rootfs", str(rootfs), *command)


#: A shell that keeps 64 MB in a variable: far above a 16 MiB limit, nothing for the host.
MEMORY_HOG = 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived ${#x}'

#: Start 40 sleeping processes, printing the count after each; stops at the first failure.
FORK_BOMB = "i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); echo $i; done"


# --- enforcement on this machine's kernel -------------------------------------------------------


@pytest.mark.parametrize("limited", [True, False], ids=["limited", "control"])
def test_memory_hog_is_oom_killed(busybox_rootfs: Path, kit_root: Path, limited: bool) -> None:
    options = ("--memory", "16m") if limited else ()
    result = run(busybox_rootfs, "sh", "-c", MEMORY_HOG, options=options, rm=False)
    (state_file,) = (kit_root / "run" / "containers").glob("*/state.json")
    state = json.loads(state_file.read_text())
    if limited:
        assert result.returncode == 137  # 128 + SIGKILL, from the OOM killer
        assert "survived" not in result.stdout
        assert "OOMKilled" in result.stderr
        assert state["oom_killed"] is True and state["exit_code"] == 137
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "survived 64000000"
        assert state["oom_killed"] is False


@pytest.mark.parametrize("limited", [True, False], ids=["limited", "control"])
def test_fork_bomb_stops_at_the_pids_limit(busybox_rootfs: Path, limited: bool) -> None:
    options = ("--pids-limit", "10") if limited else ()
    result = run(busybox_rootfs, "sh", "-c", FORK_BOMB, options=options)
    started = [int(n) for n in result.stdout.split()]
    if limited:
        # 10 processes in all, the shell included: fork fails with EAGAIN after 9 sleeps.
        assert result.returncode != 0
        assert max(started, default=0) == 9
        assert "can't fork" in result.stderr or "Resource temporarily unavailable" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert max(started) == 40


def _cgroup_lines(pid: int | str) -> dict[str, str]:
    """controller -> path, from /proc/PID/cgroup (v1 lines name their controllers)."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                out[controller or "unified"] = path
    return out


@pytest.mark.skipif(not V1, reason="this test reads cgroup v1 files (the host is not v1)")
def test_limits_are_written_and_the_container_sees_its_cgroup_as_root(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    spec = default_spec(["cat", "/proc/self/cgroup"], str(busybox_rootfs))
    limits.set_limits(spec, memory=32 << 20, memory_swap=64 << 20, pids=20, cpu=(50000, 100000))
    with ContainerProcess(spec, capture=True, pause_after=["cgroups"]) as container:
        pause = container.next_pause()
        assert pause is not None and pause.stage == "cgroups"
        expected = f"/kit/{root_tag(kit_root)}-{container.container_id}"
        seen = _cgroup_lines(pause.host_pid)
        assert seen["memory"] == seen["pids"] == seen["cpu"] == expected
        files = {
            "memory/memory.limit_in_bytes": str(32 << 20),
            "pids/pids.max": "20",
            "cpu/cpu.cfs_quota_us": "50000",
            "cpu/cpu.cfs_period_us": "100000",
        }
        for name, value in files.items():
            controller, filename = name.split("/")
            path = Path(HOST.v1[controller] + expected) / filename
            assert path.read_text().strip() == value
        # The cgroup namespace was unshared after joining: inside, this cgroup is "/".
        assert pause.namespaces["cgroup"] != pause.host_namespaces["cgroup"]
        container.resume()
        status = container.wait()
    assert status.code == 0
    inside = {}
    for line in status.stdout.decode().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            inside[controller] = path
    assert inside["memory"] == inside["pids"] == "/"
    # Removed at exit (the leak guard checks the trees as well).
    assert not (Path(HOST.v1["memory"] + expected)).exists()


def test_without_limits_only_the_devices_cgroup(busybox_rootfs: Path, kit_root: Path) -> None:
    """A container without limits is in one cgroup of its own, the devices one (its device
    policy, see tests/test_devices.py), and in its parent's everywhere else: cheap."""
    spec = default_spec(["true"], str(busybox_rootfs))
    with ContainerProcess(spec, pause_after=["cgroups"]) as container:
        pause = container.next_pause()
        assert pause is not None
        expected = f"/kit/{root_tag(kit_root)}-{container.container_id}"
        theirs, ours = _cgroup_lines(pause.host_pid), _cgroup_lines("self")
        if "devices" in HOST.v1:
            assert theirs.pop("devices") == expected and ours.pop("devices") != expected
        else:  # the device program sits on a cgroup of the unified tree
            assert theirs.pop("unified") == expected and ours.pop("unified") != expected
        assert theirs == ours
        container.resume()
        assert container.wait().code == 0
    assert not Path((HOST.v1.get("devices") or str(HOST.v2)) + expected).exists()


def test_child_cgroups_made_inside_go_with_the_container(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    """An engine inside the container (kit in a lab VM) makes cgroups below the container's.
    rmdir of a cgroup with children is EBUSY: kit removes them first, deepest first."""
    spec = default_spec(["true"], str(busybox_rootfs))
    with ContainerProcess(spec, pause_after=["cgroups"]) as container:
        assert container.next_pause() is not None
        expected = f"/kit/{root_tag(kit_root)}-{container.container_id}"
        own = Path((HOST.v1.get("devices") or str(HOST.v2)) + expected)
        (own / "kit" / "inner").mkdir(parents=True)  # what the nested engine leaves behind
        container.resume()
        assert container.wait().code == 0
    assert not own.exists()


def test_removing_a_cgroup_directory_takes_its_children(kit_root: Path) -> None:
    """kit rm -f and doctor --leaks remove a container's cgroups from the host side."""
    base = Path(HOST.v1["pids"] if V1 else str(HOST.v2)) / "kit"
    top = base / f"{root_tag(kit_root)}-nested-test"
    (top / "a" / "b").mkdir(parents=True)
    (top / "c").mkdir()
    remove_cgroup_dir(str(top))
    assert not top.exists()


def test_cgroup_is_removed_when_the_caller_dies(busybox_rootfs: Path, kit_root: Path) -> None:
    command = ["run", "--rm", "--memory", "32m", "--rootfs", str(busybox_rootfs), "sleep", "1000"]
    process = kit_popen(*command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = root_tag(kit_root)
    base = Path(HOST.v1["memory"] if V1 else str(HOST.v2)) / "kit"
    try:
        wait_for(
            lambda: base.is_dir() and any(tag in p.name for p in base.iterdir()),
            timeout=10,
            what="the container's cgroup to appear",
        )
    finally:
        process.send_signal(signal.SIGKILL)  # kit itself dies: its init parent cleans up
        process.wait()
    wait_for(
        lambda: not any(tag in p.name for p in base.iterdir()),
        timeout=10,
        what="the init parent to remove the cgroup",
    )


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--memory", "lots"), "invalid --memory"),
        (("--memory", "1m"), "below the minimum of 6m"),
        (("--memory-swap", "64m"), "--memory-swap needs --memory"),
        (("--memory", "64m", "--memory-swap", "32m"), "smaller than --memory"),
        (("--cpus", "0"), "invalid --cpus"),
        (("--cpus", str((os.cpu_count() or 1) + 1)), "invalid --cpus"),
        (("--pids-limit", "many"), "invalid --pids-limit"),
    ],
)
def test_bad_limits(busybox_rootfs: Path, options: tuple[str, ...], message: str) -> None:
    result = run(busybox_rootfs, "true", options=options)
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_controller_is_an_error_not_a_no_op() -> None:
    only_memory = layout.Layout(v1={"memory": "/sys/fs/cgroup/memory"})
    with pytest.raises(KitError, match="pids cgroup controller is not available"):
        choose(only_memory, ("memory", "pids"))


# --- parsing and layout (pure) -------------------------------------------------------------------


def test_sizes_and_cpus() -> None:
    assert limits.parse_size("64m") == 64 << 20
    assert limits.parse_size("1g") == 1 << 30
    assert limits.parse_size("512KiB") == 512 << 10
    assert limits.parse_size("1.5g") == 3 << 29
    assert limits.parse_size("100") == 100
    assert limits.parse_cpus("0.5", available=2) == (50000, 100000)
    assert limits.parse_cpus("2", available=2) == (200000, 100000)
    assert limits.parse_pids_limit("-1") == -1 and limits.parse_pids_limit("0") == -1
    assert limits.parse_memory_swap("-1", 64 << 20) == -1


HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

UNIFIED = "31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"


def test_layout_parsing() -> None:
    hybrid = layout.parse(HYBRID, "")
    assert hybrid.mode == "hybrid"
    assert hybrid.v1["cpu"] == hybrid.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert hybrid.version_for() == 1
    unified = layout.parse(UNIFIED, "cpuset cpu io memory hugetlb pids rdma misc")
    assert unified.mode == "v2" and unified.version_for() == 2
    assert layout.parse(UNIFIED, "cpu io").version_for() is None


def test_cgroup_path_default_and_checks(kit_root: Path) -> None:
    spec = default_spec(["true"], "/")
    assert cgroup_path(spec, "abc") == f"/kit/{root_tag(kit_root)}-abc"
    spec.linux.cgroups_path = "/custom//here/"
    assert cgroup_path(spec, "abc") == "/custom/here"
    spec.linux.cgroups_path = "/kit/../escape"
    with pytest.raises(KitError, match="invalid cgroupsPath"):
        cgroup_path(spec, "abc")


# --- cgroup v2: the logic, on a fake directory tree (no kernel claims) ---------------------------


def fake_v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_hands_controllers_down_and_writes_limits(tmp_path: Path) -> None:
    root = fake_v2_root(tmp_path)
    found = layout.Layout(v2=str(root), v2_controllers=("cpuset", "cpu", "io", "memory", "pids"))
    assert choose(found, ("memory", "pids", "cpu")) == 2
    cgroup = V2Cgroup.for_layout(found, "/kit/tag-abc")
    # The real cgroupfs creates cgroup.subtree_control in every new cgroup; the fake must be
    # given it before the container's directory is made below kit/.
    (root / "kit").mkdir()
    (root / "kit" / "cgroup.subtree_control").write_text("")
    cgroup.create()
    try:
        assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
        assert (root / "kit" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
        leaf = root / "kit" / "tag-abc"
        assert leaf.is_dir()
        for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "cpu.weight"):
            (leaf / name).write_text("")  # what the kernel would have created
        cgroup.apply(
            Resources(
                memory=MemoryResources(limit=64 << 20, swap=96 << 20),
                pids=PidsResources(limit=32),
                cpu=CpuResources(quota=50000, period=100000, shares=1024),
            )
        )
        assert (leaf / "memory.max").read_text() == str(64 << 20)
        assert (leaf / "memory.swap.max").read_text() == str(32 << 20)  # swap on top of memory
        assert (leaf / "pids.max").read_text() == "32"
        assert (leaf / "cpu.max").read_text() == "50000 100000"
        assert (leaf / "cpu.weight").read_text() == "39"
        cgroup.apply(
            Resources(memory=MemoryResources(limit=64 << 20, swap=-1), pids=PidsResources(-1))
        )
        assert (leaf / "memory.swap.max").read_text() == "max"
        assert (leaf / "pids.max").read_text() == "max"
        (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
        assert cgroup.oom_kills() == 1
    finally:
        for name in os.listdir(root / "kit" / "tag-abc"):
            os.unlink(root / "kit" / "tag-abc" / name)  # a real cgroup has no files to delete
        cgroup.remove()
    assert not (root / "kit" / "tag-abc").exists()
    assert (root / "kit").is_dir()  # the shared parent stays


def test_v2_leaves_already_enabled_controllers_alone(tmp_path: Path) -> None:
    root = fake_v2_root(tmp_path)
    (root / "cgroup.subtree_control").write_text("cpu memory pids")
    (root / "kit").mkdir()
    (root / "kit" / "cgroup.subtree_control").write_text("memory")
    found = layout.Layout(v2=str(root), v2_controllers=("cpu", "memory", "pids"))
    cgroup = V2Cgroup.for_layout(found, "/kit/x")
    cgroup.create()
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory pids"  # untouched
    assert (root / "kit" / "cgroup.subtree_control").read_text() == "+pids +cpu"
    cgroup.remove()


def test_v2_kill_uses_cgroup_kill(tmp_path: Path) -> None:
    directory = tmp_path / "leaf"
    directory.mkdir()
    (directory / "cgroup.kill").write_text("")
    d = Directory(str(tmp_path), "/leaf", fd=os.open(directory, os.O_RDONLY | os.O_DIRECTORY))
    try:
        V2Cgroup([d], ("memory",)).kill_all()
        assert (directory / "cgroup.kill").read_text() == "1"
    finally:
        d.close()


def test_shares_to_weight() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39
