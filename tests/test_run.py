"""``kit run``: a real container from a root filesystem built from scratch.

Every test here starts real containers on this machine's kernel through the CLI (a separate
process, as a user would) and checks what the kernel did: PID and UTS namespaces, mount
isolation, pivot_root, /proc /dev /sys, exit statuses, signals, file descriptors.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import kit_as_unprivileged_without_userns, kit_command, kit_popen, root_field_of
from lifecycle_helpers import container_pid

from kit import mounts

pytestmark = pytest.mark.usefixtures("kit_root")


def run(rootfs: Path, *command: str, options: tuple[str, ...] = (), **kwargs: object):
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command, **kwargs)


# --- namespaces ----------------------------------------------------------------------------------


def test_command_is_pid_1(host_rootfs: Path) -> None:
    result = run(host_rootfs, "sh", "-c", "echo $$")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_proc_lists_only_the_containers_processes(host_rootfs: Path) -> None:
    # Processes of the host's that the container must not see (a small VM may have few).
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        # The shell expands the glob itself: no other process exists in the container.
        result = run(host_rootfs, "sh", "-c", "echo /proc/[0-9]*")
        assert result.stdout.split() == ["/proc/1"]
        host_pids = {p for p in os.listdir("/proc") if p.isdigit()}
        assert {str(s.pid) for s in sleepers} <= host_pids
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def test_hostname_is_isolated(host_rootfs: Path) -> None:
    before = socket.gethostname()
    result = run(host_rootfs, "hostname", options=("--hostname", "box-7"))
    assert result.stdout.strip() == "box-7"
    assert socket.gethostname() == before


def test_default_hostname_is_the_short_id(host_rootfs: Path) -> None:
    name = run(host_rootfs, "hostname").stdout.strip()
    assert len(name) == 12 and all(c in "0123456789abcdef" for c in name)


def test_mount_made_inside_never_appears_on_the_host(host_rootfs: Path, kit_root: Path) -> None:
    container = kit_popen(
        "run",
        "--rm",
        "-i",
        # Mounting needs CAP_SYS_ADMIN, which containers do not keep by default.
        "--cap-add",
        "SYS_ADMIN",
        "--rootfs",
        str(host_rootfs),
        "sh",
        "-c",
        "mount -t tmpfs kit-leak-probe /mnt && grep -c kit-leak-probe /proc/self/mountinfo; "
        "read line",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert container.stdout is not None and container.stdin is not None
    try:
        assert container.stdout.readline().strip() == b"1"
        pid = container_pid(kit_root)
        # While the container lives: its namespace has the mount, the host's does not.
        assert any(m.source == "kit-leak-probe" for m in mounts.read(pid))
        assert not any(m.source == "kit-leak-probe" for m in mounts.read())
    finally:
        container.stdin.write(b"\n")
        container.stdin.close()
        container.wait(timeout=20)
    assert container.returncode == 0


def test_loopback_is_up_and_alone_in_its_network_namespace(host_rootfs: Path) -> None:
    result = run(host_rootfs, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate")
    lines = result.stdout.split()
    assert lines[:-1] == ["lo"]
    assert lines[-1] == "unknown"  # what an up loopback reports (it has no carrier)


def test_net_host_shares_the_hosts_interfaces(host_rootfs: Path) -> None:
    result = run(host_rootfs, "ls", "/sys/class/net", options=("--net", "host"))
    assert sorted(result.stdout.split()) == sorted(os.listdir("/sys/class/net"))


# --- the root filesystem and pivot_root -----------------------------------------------------


def test_old_root_is_unreachable_by_climbing(host_rootfs: Path) -> None:
    marker = host_rootfs.parent / "only-on-the-host"
    marker.write_text("x")
    try:
        result = run(host_rootfs, "sh", "-c", "cd /; cd ../../../..; pwd; ls -a /..")
    finally:
        marker.unlink()
    lines = result.stdout.split()
    assert lines[0] == "/"
    assert "only-on-the-host" not in lines
    assert set(os.listdir(host_rootfs)) <= set(lines)


def test_host_root_is_not_in_the_containers_mount_table(host_rootfs: Path) -> None:
    table = mounts.parse(run(host_rootfs, "cat", "/proc/self/mountinfo").stdout)
    root = mounts.find(table, "/")
    assert root is not None
    # The container's / is the rootfs bind mount; no mount shows the host's tree any more.
    assert root.root == root_field_of(host_rootfs)
    assert all(m.mount_point == "/" or m.mount_point.startswith("/") for m in table)
    assert not any(m.mount_point.startswith(str(host_rootfs)) for m in table)


def test_kernel_filesystems(host_rootfs: Path) -> None:
    script = (
        "ls /dev; echo --; ls /dev/pts; echo --; "
        "grep -E ' /(proc|sys|dev|dev/pts|dev/shm|tmp) ' /proc/self/mountinfo | "
        "cut -d' ' -f5,6,9; echo --; "
        "echo hi > /dev/null && echo null-ok; touch /sys/probe 2>&1; echo --"
    )
    out = run(host_rootfs, "sh", "-c", script).stdout
    dev, pts, table, checks, _ = out.split("--\n")
    assert set(dev.split()) >= {
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "pts",
        "shm",
        "mqueue",
        "ptmx",
        "fd",
        "stdin",
        "stdout",
        "stderr",
    }
    assert "sda" not in dev and "vda" not in dev  # no disks
    assert pts.split() == ["ptmx"]  # a new devpts instance: none of the host's terminals
    fstypes = {line.split()[0]: (line.split()[1], line.split()[2]) for line in table.splitlines()}
    assert fstypes["/proc"][1] == "proc" and "nosuid" in fstypes["/proc"][0]
    assert fstypes["/sys"][1] == "sysfs" and fstypes["/sys"][0].startswith("ro")
    assert fstypes["/dev"][1] == "tmpfs"
    assert fstypes["/dev/pts"][1] == "devpts"
    assert fstypes["/tmp"][1] == "tmpfs"
    assert "null-ok" in checks
    assert "Read-only file system" in checks


# --- the process ------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "status"), [("exit 0", 0), ("exit 3", 3)])
def test_exit_status_propagates(host_rootfs: Path, command: str, status: int) -> None:
    assert run(host_rootfs, "sh", "-c", command).returncode == status


def test_killed_by_sigkill_exits_137(host_rootfs: Path, kit_root: Path) -> None:
    container = kit_popen("run", "--rm", "--rootfs", str(host_rootfs), "sleep", "60")
    pid = container_pid(kit_root)
    os.kill(pid, signal.SIGKILL)
    assert container.wait(timeout=20) == 137


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 42), (signal.SIGINT, 43)])
def test_signals_to_kit_reach_the_container(host_rootfs: Path, sig: int, code: int) -> None:
    name = signal.Signals(sig).name[3:]
    container = kit_popen(
        "run",
        "--rm",
        "--rootfs",
        str(host_rootfs),
        "sh",
        "-c",
        f'trap "echo got-{name}; exit {code}" {name}; echo ready; while true; do sleep 0.05; done',
        stdout=subprocess.PIPE,
    )
    assert container.stdout is not None
    assert container.stdout.readline() == b"ready\n"
    container.send_signal(sig)
    assert container.wait(timeout=20) == code
    assert container.stdout.read() == f"got-{name}\n".encode()


def test_env_and_cwd(host_rootfs: Path) -> None:
    result = run(
        host_rootfs,
        "sh",
        "-c",
        'echo "$FOO"; pwd; echo "$HOME"; echo "$PATH"',
        options=("-e", "FOO=bar baz", "-w", "/etc"),
    )
    foo, cwd, home, path = result.stdout.splitlines()
    assert (foo, cwd, home) == ("bar baz", "/etc", "/root")
    assert "/usr/bin" in path.split(":")


def test_stdout_and_stderr_stay_separate(host_rootfs: Path) -> None:
    result = run(host_rootfs, "sh", "-c", "echo out; echo err >&2")
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_no_host_file_descriptor_leaks_into_the_container(
    host_rootfs: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("do not leak")
    fd = os.open(secret, os.O_RDONLY)  # inheritable, passed to kit on purpose
    try:
        result = run(host_rootfs, "sh", "-c", "ls -l /proc/$$/fd", pass_fds=(fd,))
    finally:
        os.close(fd)
    lines = [line for line in result.stdout.splitlines() if "->" in line]
    fds = sorted(int(line.split("->")[0].split()[-1]) for line in lines)
    assert fds == [0, 1, 2], result.stdout
    assert "host-secret" not in result.stdout


def test_user_and_group(host_rootfs: Path) -> None:
    result = run(host_rootfs, "id", "-u", options=("-u", "1000:1000"))
    assert result.stdout.strip() == "1000"


# --- tracing and stepping ------------------------------------------------------------------------


def test_trace_prints_each_system_call(host_rootfs: Path) -> None:
    result = run(host_rootfs, "true", options=("--trace",))
    assert result.returncode == 0
    assert "unshare(CLONE_NEWNS|" in result.stderr
    assert 'mount("proc", ' in result.stderr
    assert 'pivot_root(".", ".") = 0' in result.stderr
    assert 'umount2(".", MNT_DETACH) = 0' in result.stderr
    assert "execve(" in result.stderr


def test_events_json(host_rootfs: Path, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    result = run(
        host_rootfs, "true", options=("--events", "json", "--events-file", str(events_file))
    )
    assert result.returncode == 0
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    stages = [e["name"] for e in events if e["kind"] == "stage" and e["phase"] == "start"]
    assert stages[:4] == ["namespaces", "cgroups", "propagation", "rootfs"]
    assert stages.index("pivot-root") < stages.index("exec")
    assert any(e["kind"] == "syscall" and e["name"] == "pivot_root" for e in events)
    assert events[-1]["kind"] == "exit" and events[-1]["data"]["code"] == 0


def test_pause_after_a_stage_then_continue(host_rootfs: Path) -> None:
    result = run(host_rootfs, "echo", "done", options=("--pause-after", "pivot-root"), input="\n")
    assert result.returncode == 0
    assert "paused after stage pivot-root" in result.stderr
    assert result.stdout == "done\n"


def test_step_pauses_after_every_stage(host_rootfs: Path) -> None:
    result = run(host_rootfs, "echo", "done", options=("--step",), input="\n" * 30)
    assert result.returncode == 0, result.stderr
    for stage in (
        "namespaces",
        "cgroups",
        "propagation",
        "rootfs",
        "kernel-filesystems",
        "devices",
        "volumes",
        "pivot-root",
        "hostname",
        "network",
        "identity",
    ):
        assert f"paused after stage {stage}" in result.stderr
    assert "mount table changes by kernel-filesystems" in result.stderr
    assert result.stdout == "done\n"


def test_aborting_a_pause_leaves_nothing(host_rootfs: Path, kit_root: Path) -> None:
    # End of input at the prompt aborts; the leak guard checks no mount/process survives.
    result = run(
        host_rootfs, "echo", "done", options=("--pause-after", "kernel-filesystems"), input=""
    )
    assert result.returncode != 0
    assert "aborted" in result.stderr
    assert result.stdout == ""
    assert not [p for p in (kit_root / "run" / "containers").glob("*") if p.is_dir()]


def test_container_record_is_kept_without_rm(host_rootfs: Path, kit_root: Path) -> None:
    result = kit_command("run", "--rootfs", str(host_rootfs), "sh", "-c", "exit 4")
    assert result.returncode == 4
    (state_file,) = (kit_root / "run" / "containers").glob("*/state.json")
    state = json.loads(state_file.read_text())
    assert state["status"] == "stopped" and state["exit_code"] == 4


# --- bad input -----------------------------------------------------------------------------------


def test_missing_rootfs(tmp_path: Path) -> None:
    result = run(tmp_path / "nope", "sh")
    assert result.returncode == 125
    assert "does not exist" in result.stderr and "kit rootfs build" in result.stderr


def test_rootfs_that_is_a_file(tmp_path: Path) -> None:
    archive = tmp_path / "rootfs.tar"
    archive.write_bytes(b"")
    result = run(archive, "sh")
    assert result.returncode == 125
    assert "is not a directory" in result.stderr


def test_command_missing_from_rootfs(host_rootfs: Path) -> None:
    result = run(host_rootfs, "no-such-program")
    assert result.returncode == 127
    assert "executable not found in rootfs: no-such-program" in result.stderr


def test_missing_loader_is_named(tmp_path: Path) -> None:
    from kit import elf
    from kit.rootfs import build_rootfs

    rootfs = tmp_path / "rootfs"
    build_rootfs(rootfs, "host", programs=["true"])
    loader = elf.interpreter(str(rootfs / "usr/bin/true")) or elf.interpreter(
        str(rootfs / "bin/true")
    )
    assert loader
    (rootfs / loader.lstrip("/")).unlink()
    result = run(rootfs, "/bin/true")
    assert result.returncode == 127
    assert f"its ELF interpreter (the dynamic loader) {loader} is missing" in result.stderr


def test_unknown_flag() -> None:
    result = kit_command("run", "--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


@pytest.mark.parametrize("name", ["-bad", "bad_name", "a" * 65, "end-."])
def test_invalid_hostname(host_rootfs: Path, name: str) -> None:
    result = run(host_rootfs, "true", options=(f"--hostname={name}",))
    assert result.returncode == 2
    assert "invalid hostname" in result.stderr


def test_no_command(host_rootfs: Path) -> None:
    result = run(host_rootfs)
    assert result.returncode == 2
    assert "no command given" in result.stderr


def test_unknown_stage_name(host_rootfs: Path) -> None:
    result = run(host_rootfs, "true", options=("--pause-after", "teleport"))
    assert result.returncode == 2
    assert "unknown stage 'teleport'" in result.stderr and "pivot-root" in result.stderr


@pytest.fixture
def shared_scratch(busybox_rootfs: Path) -> Iterator[Path]:
    """A world-searchable directory with a copy of the busybox rootfs and a KIT_ROOT anyone may
    write: an unprivileged user reaches neither pytest's private temp dirs nor root's home."""
    scratch = Path(tempfile.mkdtemp(prefix="kit-nonroot-"))
    try:
        scratch.chmod(0o755)
        shutil.copytree(busybox_rootfs, scratch / "rootfs", symlinks=True)
        (scratch / "kit-root").mkdir()
        (scratch / "kit-root").chmod(0o777)
        yield scratch
    finally:
        shutil.rmtree(scratch)


def test_without_root_or_user_namespaces_points_to_doctor(shared_scratch: Path) -> None:
    result = kit_as_unprivileged_without_userns(
        "run",
        "--rm",
        "--rootfs",
        str(shared_scratch / "rootfs"),
        "true",
        env={**os.environ, "KIT_ROOT": str(shared_scratch / "kit-root")},
    )
    assert result.returncode == 125, result.stderr
    assert "kit doctor" in result.stderr, result.stderr


def test_unwritable_state_directory_is_one_clear_line(shared_scratch: Path) -> None:
    # HOME still points at root's home (setpriv keeps the environment): kit cannot write there.
    result = kit_as_unprivileged_without_userns(
        "run",
        "--rm",
        "--rootfs",
        str(shared_scratch / "rootfs"),
        "true",
        env={**os.environ, "HOME": "/root", "KIT_ROOT": ""},
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "EACCES" in result.stderr and "KIT_ROOT" in result.stderr


def test_unreachable_rootfs_is_not_called_missing(busybox_rootfs: Path) -> None:
    # pytest's temp dirs are private to root: an ordinary user cannot reach this rootfs.
    result = kit_as_unprivileged_without_userns(
        "run", "--rm", "--rootfs", str(busybox_rootfs), "true"
    )
    assert result.returncode == 125
    assert "cannot reach root filesystem" in result.stderr and "EACCES" in result.stderr


def test_a_closed_pipe_ends_output_quietly() -> None:
    # `kit ... | head`: the reader leaves early; kit must not print a traceback.
    result = subprocess.run(
        f"{sys.executable} -m kit seccomp show | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_a_container_without_proc_still_runs(host_rootfs: Path) -> None:
    # Nothing after pivot_root may depend on /proc being mounted (e.g. reading cap_last_cap).
    from kit.runtime.defaults import default_spec
    from kit.runtime.launcher import ContainerProcess

    spec = default_spec(["/bin/sh", "-c", "echo ok; ls /proc | wc -l"], str(host_rootfs))
    spec.mounts = [m for m in spec.mounts if m.destination != "/proc"]
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.code == 0, status.error
    assert status.stdout.split() == [b"ok", b"0"]
