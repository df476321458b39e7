"""Read-only root with writable exceptions, read-only and masked /proc paths, and the
per-container /etc/hostname, /etc/hosts and /etc/resolv.conf; each checked on the kernel, and
each control also turned off to show the check can fail."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from helpers import kit_command

from kit import mounts
from kit.rootfs import build_rootfs
from kit.runtime import etc_files
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess

pytestmark = pytest.mark.usefixtures("kit_root")


@pytest.fixture
def own_rootfs(tmp_path: Path) -> Path:
    """A busybox root filesystem this test may write into."""
    root = tmp_path / "rootfs"
    build_rootfs(root, "busybox")
    return root


def run(rootfs: Path, script: str, *options: str):
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), "sh", "-c", script)


def table(rootfs: Path, *options: str) -> list[mounts.Mount]:
    result = run(rootfs, "cat /proc/self/mountinfo", *options)
    assert result.returncode == 0, result.stderr
    return mounts.parse(result.stdout)


# --- --read-only ---------------------------------------------------------------------------------


def test_read_only_root_refuses_writes_with_erofs(own_rootfs: Path) -> None:
    refused = run(own_rootfs, "touch /usr/written && echo wrote", "--read-only")
    assert "Read-only file system" in refused.stderr
    assert not (own_rootfs / "usr" / "written").exists()
    # Control off: the same write works (and lands in the root filesystem on the host).
    allowed = run(own_rootfs, "touch /usr/written && echo wrote")
    assert allowed.stdout.strip() == "wrote"
    assert (own_rootfs / "usr" / "written").exists()


def test_mounts_on_top_of_a_read_only_root_stay_writable(own_rootfs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = run(
        own_rootfs,
        "touch /tmp/a /scratch/b /data/c /dev/shm/d && echo all-written",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        f"{data}:/data",
    )
    assert result.stdout.strip() == "all-written", result.stderr
    assert (data / "c").exists()
    found = table(own_rootfs, "--read-only", "--tmpfs", "/scratch")
    assert mounts.find(found, "/").read_only
    for point in ("/tmp", "/scratch", "/dev", "/proc"):
        entry = mounts.find(found, point)
        assert entry is not None and not entry.read_only, point


def test_read_only_root_does_not_touch_the_host(own_rootfs: Path) -> None:
    assert run(own_rootfs, "true", "--read-only").returncode == 0
    # The read-only mount was the container's own: on the host the directory stays writable,
    # and no mount of it is left in the host's table.
    (own_rootfs / "usr" / "host-write").write_text("still writable\n")
    assert not [m for m in mounts.read() if m.mount_point.startswith(str(own_rootfs))]


# --- read-only and masked paths ------------------------------------------------------------------


def test_proc_sys_is_read_only_and_the_probe_can_fail(busybox_rootfs: Path) -> None:
    host_name = socket.gethostname()
    script = "echo changed > /proc/sys/kernel/hostname && hostname"
    refused = run(busybox_rootfs, script)
    assert "Read-only file system" in refused.stderr
    proc_sys = mounts.find(table(busybox_rootfs), "/proc/sys")
    assert proc_sys is not None and proc_sys.read_only
    # The remount kept the flags /proc has: nothing in /proc may be run or be a device.
    assert {"nosuid", "nodev", "noexec"} <= set(proc_sys.options)
    allowed = run(busybox_rootfs, script, "--security-opt", "systempaths=unconfined")
    assert allowed.stdout.strip() == "changed", allowed.stderr
    assert socket.gethostname() == host_name  # the UTS namespace kept it in the container


def test_masked_file_reads_empty_and_unmasked_shows_the_host(busybox_rootfs: Path) -> None:
    assert os.path.getsize("/proc/timer_list") == 0  # proc files report size 0: read them
    with open("/proc/timer_list") as f:
        assert f.read(64)
    script = "wc -c < /proc/timer_list; [ -c /proc/timer_list ] && echo is-a-device"
    masked = run(busybox_rootfs, script)
    assert masked.stdout.split() == ["0", "is-a-device"]
    shown = run(busybox_rootfs, script, "--security-opt", "systempaths=unconfined")
    assert int(shown.stdout.split()[0]) > 0


def test_masked_directory_is_an_empty_read_only_tmpfs(busybox_rootfs: Path) -> None:
    assert os.listdir("/sys/firmware")  # the host has firmware tables
    result = run(busybox_rootfs, "ls -A /sys/firmware | wc -l; touch /sys/firmware/x")
    assert result.stdout.split()[0] == "0"
    assert "Read-only file system" in result.stderr
    entry = mounts.find(table(busybox_rootfs), "/sys/firmware")
    assert entry is not None and entry.fstype == "tmpfs" and entry.read_only


def test_missing_masked_and_read_only_paths_are_skipped(busybox_rootfs: Path) -> None:
    spec = default_spec(["sh", "-c", "echo started"], str(busybox_rootfs))
    spec.linux.masked_paths += ["/proc/no-such-file", "/sys/no/such/dir"]
    spec.linux.readonly_paths += ["/proc/no-such-dir"]
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.code == 0, status.error
    assert status.stdout.decode().strip() == "started"
    skipped = [e.message for e in container.events if e.kind == "info"]
    assert any("/proc/no-such-file does not exist here: skipped" in (m or "") for m in skipped)


def test_a_specs_own_masked_paths_are_honoured(busybox_rootfs: Path) -> None:
    spec = default_spec(
        ["sh", "-c", "wc -c < /proc/version; ls -A /proc/driver | wc -l"], str(busybox_rootfs)
    )
    spec.linux.masked_paths = ["/proc/version", "/proc/driver"]
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.stdout.decode().split() == ["0", "0"]


# --- /etc/hostname, /etc/hosts, /etc/resolv.conf -------------------------------------------------


def test_etc_files_are_per_container_and_the_rootfs_is_untouched(busybox_rootfs: Path) -> None:
    before = {
        name: (busybox_rootfs / "etc" / name).read_bytes()
        for name in ("hostname", "hosts", "resolv.conf")
    }
    result = run(
        busybox_rootfs,
        "cat /etc/hostname; grep -c localhost /etc/hosts; grep -c nameserver /etc/resolv.conf",
        "--hostname",
        "box-9",
    )
    lines = result.stdout.split()
    assert lines[0] == "box-9"
    assert int(lines[1]) >= 2 and int(lines[2]) >= 1
    found = table(busybox_rootfs)
    for point in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
        entry = mounts.find(found, point)
        assert entry is not None and "/run/containers/" in entry.root, point
    after = {name: (busybox_rootfs / "etc" / name).read_bytes() for name in before}
    assert after == before


def test_etc_files_are_read_only_with_a_read_only_root(busybox_rootfs: Path) -> None:
    result = run(busybox_rootfs, "echo x >> /etc/hosts", "--read-only")
    assert "Read-only file system" in result.stderr
    writable = run(busybox_rootfs, "echo '10.0.0.1 db' >> /etc/hosts && grep -c db /etc/hosts")
    assert writable.stdout.strip() == "1"


def test_a_user_mount_over_an_etc_file_wins(busybox_rootfs: Path, tmp_path: Path) -> None:
    mine = tmp_path / "hosts"
    mine.write_text("10.1.2.3 mine\n")
    result = run(busybox_rootfs, "cat /etc/hosts", "-v", f"{mine}:/etc/hosts:ro")
    assert result.stdout == "10.1.2.3 mine\n"


def test_resolv_conf_drops_loopback_nameservers() -> None:
    host = "search example\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\n"
    assert etc_files.container_resolv_conf(host, host_network=False) == (
        "search example\nnameserver 10.0.0.2\n"
    )
    only_local = "nameserver 127.0.0.53\noptions edns0\n"
    fallback = etc_files.container_resolv_conf(only_local, host_network=False)
    assert "127.0.0.53" not in fallback and "nameserver 8.8.8.8" in fallback
    assert etc_files.container_resolv_conf(only_local, host_network=True) == only_local
