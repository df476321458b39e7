"""``kit exec``: one more program in a running container, with everything the container has.

Each test compares what the kernel says about the exec'd process (read from inside the
container, or from the host through /proc) with the container's PID 1: the same namespaces,
cgroups, capabilities, no_new_privs, seccomp mode, Landlock domain and user, and nothing of
the host (no file descriptors, no interpreter).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import kit_popen, status_fields
from lifecycle_helpers import cmdline, find_record, kit, ns_ids, parent_pid, remove_all, wait_for

pytestmark = pytest.mark.usefixtures("kit_root", "containers")

NS = ("mnt", "pid", "uts", "ipc", "net", "cgroup", "user")


@pytest.fixture
def containers() -> object:
    yield
    remove_all()


def start(rootfs: Path, name: str, *options: str, command: tuple[str, ...] = ()) -> dict:
    kit(
        "run",
        "-d",
        "--name",
        name,
        *options,
        "--rootfs",
        str(rootfs),
        *(command or ("sleep", "1000")),
    )
    return find_record(Path(os.environ["KIT_ROOT"]), name)


def test_exec_joins_every_namespace_of_the_container(busybox_rootfs: Path) -> None:
    data = start(busybox_rootfs, "web")
    script = "for n in " + " ".join(NS) + "; do readlink /proc/self/ns/$n; done"
    inside = kit("exec", "web", "sh", "-c", script).stdout.split()
    container = ns_ids(data["pid"])
    host = ns_ids("self")
    for name, link in zip(NS, inside, strict=True):
        number = int(link.split("[")[1].rstrip("]"))
        assert number == container[name], name
        if name != "user":  # no user namespace: shared with the host, as the container's
            assert number != host[name], name


def test_exec_is_in_the_pid_namespace_but_not_pid_1(busybox_rootfs: Path) -> None:
    start(busybox_rootfs, "web")
    out = kit("exec", "web", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '").stdout
    pid, init = out.split("\n", 1)
    assert int(pid) > 1
    assert init.strip() == "sleep 1000"


def test_exec_joins_the_cgroups_and_limits(busybox_rootfs: Path) -> None:
    start(busybox_rootfs, "limited", "--pids-limit", "30")
    out = kit("exec", "limited", "sh", "-c", "cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup")
    mine, theirs = out.stdout.split("==\n")
    assert mine.strip() == theirs.strip()
    # The cgroup namespace's root is the container's cgroup: paths read "/" inside.
    assert all(line.endswith(":/") for line in theirs.split())


def test_exec_has_the_containers_security(busybox_rootfs: Path) -> None:
    start(
        busybox_rootfs,
        "locked",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "-u",
        "1000:1000",
    )
    script = "cat /proc/self/status; echo ==; cat /proc/1/status"
    mine, theirs = kit("exec", "locked", "sh", "-c", script).stdout.split("==\n")
    mine_fields = status_fields(mine)
    assert mine_fields == status_fields(theirs)
    assert mine_fields["Uid"].split()[0] == "1000"
    assert mine_fields["NoNewPrivs"] == "1" and mine_fields["Seccomp"] == "2"
    assert int(mine_fields["CapBnd"], 16) == 1 << 10  # CAP_NET_BIND_SERVICE only


def test_exec_user_can_be_chosen(busybox_rootfs: Path) -> None:
    start(busybox_rootfs, "web", "-u", "1000")
    assert kit("exec", "web", "id", "-u").stdout.strip() == "1000"
    assert kit("exec", "-u", "0", "web", "id", "-u").stdout.strip() == "0"


def test_exec_is_bound_by_landlock(busybox_rootfs: Path) -> None:
    start(
        busybox_rootfs,
        "sandbox",
        "--landlock",
        "/bin:rx",
        "--landlock",
        "/lib:rx",
        "--landlock",
        "/proc:ro",
    )
    allowed = kit("exec", "sandbox", "cat", "/proc/self/status")
    assert allowed.returncode == 0
    denied = kit("exec", "sandbox", "cat", "/etc/passwd", check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


def test_exec_gets_the_containers_env_and_cwd(busybox_rootfs: Path) -> None:
    start(busybox_rootfs, "envy", "-e", "COLOUR=blue", "-w", "/tmp")
    out = kit("exec", "envy", "sh", "-c", "echo $COLOUR; pwd").stdout.split()
    assert out == ["blue", "/tmp"]
    out = kit("exec", "-e", "COLOUR=red", "-w", "/", "envy", "sh", "-c", "echo $COLOUR; pwd")
    assert out.stdout.split() == ["red", "/"]


def test_exec_leaks_no_host_file_descriptor(busybox_rootfs: Path, tmp_path: Path) -> None:
    start(busybox_rootfs, "web")
    secret = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # inheritable on purpose
    os.set_inheritable(secret, True)
    try:
        result = kit("exec", "web", "ls", "-l", "/proc/self/fd", close_fds=False)
    finally:
        os.close(secret)
    fds = sorted(int(line.split()[-3]) for line in result.stdout.splitlines()[1:] if "->" in line)
    # 0, 1, 2, and at most the directory ls itself opened to list /proc/self/fd.
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4
    assert str(tmp_path) not in result.stdout


def test_the_interpreter_is_not_what_runs_inside(busybox_rootfs: Path) -> None:
    """/proc/PID/exe of the exec'd process is the container's program, not kit's Python."""
    start(busybox_rootfs, "web")
    exe = kit("exec", "web", "readlink", "/proc/self/exe").stdout.strip()
    assert exe == "/bin/busybox"


def test_the_joiner_is_non_dumpable_and_outside_the_pid_namespace(busybox_rootfs: Path) -> None:
    """CVE-2019-5736: nothing in the container may reach the joiner's /proc/PID/exe (kit's
    Python). The joiner stays in the host's PID namespace, and the trace shows it made
    itself non-dumpable and its fds close-on-exec before joining anything."""
    data = start(busybox_rootfs, "web")
    process = kit_popen(
        *("exec", "web", "sh", "-c", "echo ready; exec sleep 999"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        program = wait_for(
            lambda: next((p for p in _members(data["pid"]) if cmdline(p) == "sleep 999"), None),
            what="the exec'd program",
        )
        joiner = parent_pid(program)
        # The joiner (kit's Python) never enters the container's PID namespace: no /proc
        # entry of the container names it, so /proc/<pid>/exe cannot lead to it.
        assert ns_ids(joiner)["pid"] == ns_ids("self")["pid"] != ns_ids(data["pid"])["pid"]
        with open(f"/proc/{joiner}/status") as f:
            assert len(status_fields(f.read(), ("NSpid",))["NSpid"].split()) == 1
        # What the container can see of the exec'd process is its own program.
        assert os.readlink(f"/proc/{program}/exe").endswith("busybox")
    finally:
        process.terminate()
        process.wait(timeout=30)
    trace = kit("exec", "--trace", "web", "true").stderr.splitlines()
    calls = [line.split("] ", 1)[1] for line in trace if line.startswith("[exec] ")]
    assert calls[0].startswith("prctl(PR_SET_DUMPABLE, 0)")
    assert calls[1].startswith("close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)")
    setns = [c for c in calls if c.startswith("setns(")]
    assert len(setns) >= 5 and "CLONE_NEWNS" in setns[-1]


def _members(pid: int) -> list[int]:
    from kit.runtime.processes import namespace_members

    return namespace_members(pid)


def test_exec_exit_codes_and_errors(busybox_rootfs: Path) -> None:
    start(busybox_rootfs, "web")
    assert kit("exec", "web", "sh", "-c", "exit 7", check=False).returncode == 7
    missing = kit("exec", "web", "no-such-program", check=False)
    assert missing.returncode == 127 and "executable not found" in missing.stderr
    kit("run", "-d", "--name", "gone", "--rootfs", str(busybox_rootfs), "true")
    wait_for(lambda: json.loads(kit("inspect", "gone").stdout)[0]["State"]["Status"] == "stopped")
    refused = kit("exec", "gone", "true", check=False)
    assert refused.returncode == 1 and "not running" in refused.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2])
def test_signals_reach_the_execd_process(busybox_rootfs: Path, sig: int) -> None:
    """kit exec passes a caller's signals on (kit.forwarding): the program dies of it, and kit
    reports 128+N, instead of kit itself dying and leaving the program running."""
    start(busybox_rootfs, "web")
    process = kit_popen(
        *("exec", "web", "sh", "-c", "echo ready; sleep 100"), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(sig)
    assert process.wait(timeout=30) == 128 + sig


def test_exec_with_a_terminal_through_a_console_socket(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    """runc's --console-socket: the pty is made in the container, its master sent to us."""
    start(busybox_rootfs, "web")
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kit",
                "exec",
                "-t",
                "--console-socket",
                path,
                "web",
                "sh",
                "-c",
                "tty; stty size",
            ],
        )
        connection, _ = server.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 64, 1)
        master = fds[0]
        output = b""
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the terminal's last user is gone
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        assert process.wait(timeout=30) == 0
    lines = output.decode().split()
    assert lines[0] == "/dev/pts/0" and lines[1:] == ["24", "80"]


def test_exec_in_a_user_namespace_joins_it_first(busybox_rootfs: Path) -> None:
    data = start(busybox_rootfs, "userns", "--userns")
    out = kit(
        "exec", "userns", "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user"
    )
    uid, *rest = out.stdout.split("\n")
    assert uid == "0"
    with open(f"/proc/{data['pid']}/uid_map") as f:
        assert " ".join(rest[0].split()) == " ".join(f.read().split())
    assert int(rest[1].split("[")[1].rstrip("]")) == ns_ids(data["pid"])["user"]


def test_every_stage_is_classified_for_exec() -> None:
    """A new init stage must be sorted: does an exec'd process need it again, or not?"""
    from kit.runtime import pipeline
    from kit.runtime.exec import CONTAINER_WIDE_STAGES, PROCESS_STAGES

    names = [stage.name for stage in pipeline.CONTAINER_STAGES]
    assert sorted(names) == sorted([*PROCESS_STAGES, *CONTAINER_WIDE_STAGES])
    assert not set(PROCESS_STAGES) & set(CONTAINER_WIDE_STAGES)
    # In the init's order, so that the exec'd process gets them in the same sequence.
    assert [n for n in names if n in PROCESS_STAGES] == list(PROCESS_STAGES)


def test_detached_exec_returns_and_the_program_keeps_running(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    data = start(busybox_rootfs, "web")
    pid_file = tmp_path / "exec.pid"
    kit("exec", "-d", "--pid-file", str(pid_file), "web", "sleep", "1000")
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    with open(f"/proc/{pid}/status") as f:
        nspid = status_fields(f.read(), ("NSpid",))["NSpid"].split()
    assert nspid[0] == str(pid) and int(nspid[-1]) > 1
    assert ns_ids(pid)["pid"] == ns_ids(data["pid"])["pid"]


def test_detached_exec_reports_the_exec_not_the_programs_exit(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    """A detached exec succeeds once the program runs, however fast it ends (its status is
    the subreaper's, conmon's under podman); a program that cannot start is an error."""
    start(busybox_rootfs, "web")
    for attempt in range(10):  # the program often ends before kit leaves: never its status
        pid_file = tmp_path / f"exec-{attempt}.pid"
        quick = kit("exec", "-d", "--pid-file", str(pid_file), "web", "sh", "-c", "exit 6")
        assert quick.returncode == 0 and int(pid_file.read_text()) > 0
    missing = kit("exec", "-d", "web", "/no/such/program", check=False)
    assert missing.returncode != 0 and "/no/such/program" in missing.stderr


def test_exec_it_in_a_real_terminal(host_rootfs: Path, tmp_path: Path) -> None:
    """``kit exec -it``: a shell with a terminal of the container's devpts, job control,
    the outer terminal's size, and the exit status back in the caller's shell."""
    import re
    import shlex

    from test_terminal import Tmux

    start(host_rootfs, "web")
    command = shlex.join(
        [sys.executable, "-m", "kit", "exec", "-it", "web", "/bin/bash", "--norc", "-i"]
    )
    done = tmp_path / "status"
    tmux = Tmux(tmp_path / "tmux.sock", f"{command}; echo $? > {done}; sleep 60", 90, 25)
    try:
        tmux.wait_for(lambda s: "#" in s or "$" in s)
        tmux.keys("tty; stty size; echo pid=$$", "Enter")
        screen = tmux.wait_for(lambda s: re.search(r"^pid=\d+$", s, re.M) is not None)
        assert "/dev/pts/" in screen and "25 90" in screen
        assert "pid=1\n" not in screen  # a new process in the container, not its PID 1
        tmux.keys("sleep 300", "Enter")
        time.sleep(0.3)
        tmux.keys("C-z")
        tmux.wait_for(lambda s: "Stopped" in s)
        tmux.keys("fg", "Enter")
        time.sleep(0.3)
        tmux.keys("C-c")  # from the terminal's line discipline to the foreground job
        tmux.keys("echo after=$?", "Enter")
        tmux.wait_for(lambda s: "after=130" in s)
        tmux.keys("exit 5", "Enter")
        wait_for(lambda: done.exists() and done.read_text().strip(), what="the exit status")
        assert done.read_text().strip() == "5"
    finally:
        tmux.kill()


def test_exec_into_a_container_without_proc(host_rootfs: Path) -> None:
    # The container unmounts its own /proc (it was given CAP_SYS_ADMIN for that): the joiner
    # reads what it needs from the host's /proc before entering, and still drops capabilities.
    start(host_rootfs, "noproc", "--cap-add", "SYS_ADMIN")
    kit("exec", "noproc", "umount", "-R", "/proc")
    assert kit("exec", "noproc", "ls", "/proc").stdout == ""
    kit("exec", "noproc", "mount", "-t", "proc", "proc", "/proc")
    mine = kit("exec", "noproc", "cat", "/proc/self/status").stdout
    theirs = kit("exec", "noproc", "cat", "/proc/1/status").stdout
    keys = ("CapEff", "CapBnd", "Seccomp")
    assert status_fields(mine, keys) == status_fields(theirs, keys)
