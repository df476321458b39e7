"""Living containers: ``kit run -d`` and its monitor, ps, logs, stop, kill, rm, inspect.

Real containers on the real kernel, driven through the CLI in separate processes, as a user
would. Every test removes its containers (the ``containers`` fixture), and the leak guard
checks that no monitor, container, mount or cgroup is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from lifecycle_helpers import (
    alive,
    busybox_image,
    find_record,
    inspect,
    kit,
    parent_pid,
    remove_all,
    stopped,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("kit_root", "containers")


@pytest.fixture
def containers() -> object:
    yield
    remove_all()


def run_d(rootfs: Path, *command: str, options: tuple[str, ...] = ()) -> str:
    out = kit("run", "-d", *options, "--rootfs", str(rootfs), *command).stdout.strip()
    assert len(out) == 64 and all(c in "0123456789abcdef" for c in out), out
    return out


# --- run -d and the monitor ---------------------------------------------------------------------


def test_detached_container_outlives_the_cli(busybox_rootfs: Path, kit_root: Path) -> None:
    container_id = run_d(busybox_rootfs, "sleep", "1000", options=("--name", "web"))
    data = find_record(kit_root, "web")
    assert data["id"] == container_id and data["status"] == "running"
    pid, monitor = data["pid"], data["owner_pid"]
    # The CLI has exited; the container runs, kept by a monitor that is nobody's child here.
    assert alive(pid) and alive(monitor)
    assert parent_pid(monitor) != os.getpid()
    with open(f"/proc/{monitor}/comm") as f:
        assert f.read().strip() == "kit-monitor"
    # The monitor is in another session (stat field 6), without a terminal (field 7: tty_nr),
    # and is not its session's leader (the double fork), so it can never acquire one.
    with open(f"/proc/{monitor}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    session, tty = int(fields[3]), int(fields[4])
    assert session != os.getsid(0) and tty == 0 and session != monitor
    listed = kit("ps").stdout
    assert "web" in listed and container_id[:12] in listed and "Up " in listed
    assert kit("ps", "-q").stdout.split() == [container_id[:12]]


def test_exit_status_is_recorded(busybox_rootfs: Path) -> None:
    run_d(busybox_rootfs, "sh", "-c", "exit 3", options=("--name", "three"))
    document = wait_for(lambda: stopped("three"), what="the exit to be recorded")
    assert document["State"]["ExitCode"] == 3
    assert document["State"]["Running"] is False
    assert kit("ps", "-q").stdout == ""
    assert "Exited (3)" in kit("ps", "-a").stdout


def test_setup_failure_is_reported_by_run_d(busybox_rootfs: Path, kit_root: Path) -> None:
    result = kit("run", "-d", "--rootfs", str(busybox_rootfs), "no-such-program", check=False)
    assert result.returncode == 127
    assert "executable not found" in result.stderr
    assert result.stdout == ""


def test_rm_flag_removes_the_detached_container_when_it_exits(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    container_id = run_d(busybox_rootfs, "true", options=("--rm",))
    wait_for(
        lambda: not (kit_root / "run" / "containers" / container_id).exists(),
        what="the container to be removed",
    )


# --- logs ---------------------------------------------------------------------------------------


def test_logs_keep_stdout_and_stderr_apart(busybox_rootfs: Path) -> None:
    run_d(
        busybox_rootfs,
        "sh",
        "-c",
        "echo out1; echo err1 >&2; printf 'no newline'",
        options=("--name", "talker"),
    )
    wait_for(lambda: stopped("talker"), what="the container to end")
    logs = kit("logs", "talker")
    assert logs.stdout == "out1\nno newline"
    assert logs.stderr == "err1\n"
    stamped = kit("logs", "-t", "talker").stdout.splitlines()
    assert stamped[0].endswith("Z out1") and stamped[0][:4].isdigit()
    assert kit("logs", "--tail", "1", "talker").stdout == "no newline"


def test_logs_keep_bytes_that_are_not_utf8(busybox_rootfs: Path) -> None:
    run_d(busybox_rootfs, "sh", "-c", r"printf '\377\376ok\n'", options=("--name", "bytes"))
    wait_for(lambda: stopped("bytes"), what="the container to end")
    out = kit("logs", "bytes", text=False).stdout
    assert out == b"\xff\xfeok\n"


def test_logs_follow_until_the_container_ends(busybox_rootfs: Path) -> None:
    run_d(
        busybox_rootfs,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.3; done",
        options=("--name", "slow"),
    )
    follow = kit("logs", "-f", "slow")
    assert follow.stdout == "line 1\nline 2\nline 3\n"
    assert stopped("slow") is not None


def test_terminal_output_is_logged(busybox_rootfs: Path) -> None:
    run_d(busybox_rootfs, "tty", options=("--name", "withtty", "-t"))
    wait_for(lambda: stopped("withtty"), what="the container to end")
    assert kit("logs", "withtty").stdout.strip() == "/dev/pts/0"


def test_interactive_detached_keeps_stdin_open(busybox_rootfs: Path) -> None:
    # `sh` reads its commands from stdin: it only keeps running while stdin stays open.
    run_d(busybox_rootfs, "sh", options=("--name", "shell", "-i"))
    data = inspect("shell")
    assert data["State"]["Running"] is True
    assert kit("exec", "shell", "echo", "inside").stdout == "inside\n"


# --- stop, kill, rm -----------------------------------------------------------------------------


def test_stop_sends_sigterm_first(busybox_rootfs: Path) -> None:
    script = "trap 'echo got TERM; exit 42' TERM; while :; do sleep 0.1; done"
    run_d(busybox_rootfs, "sh", "-c", script, options=("--name", "polite"))
    kit("stop", "-t", "20", "polite")
    document = stopped("polite")
    assert document is not None and document["State"]["ExitCode"] == 42
    assert "got TERM" in kit("logs", "polite").stdout


def test_stop_kills_after_the_grace_period(busybox_rootfs: Path) -> None:
    # PID 1 without a handler ignores SIGTERM: only SIGKILL ends it.
    run_d(busybox_rootfs, "sleep", "1000", options=("--name", "stubborn"))
    kit("stop", "-t", "0.5", "stubborn")
    state = stopped("stubborn")["State"]  # type: ignore[index]
    assert state["ExitCode"] == 137 and state["ExitSignal"] == signal.SIGKILL


def test_kill_with_a_signal(busybox_rootfs: Path) -> None:
    script = "trap 'echo got HUP' HUP; while :; do sleep 0.1; done"
    run_d(busybox_rootfs, "sh", "-c", script, options=("--name", "hup"))
    kit("kill", "-s", "HUP", "hup")
    wait_for(lambda: "got HUP" in kit("logs", "hup").stdout, what="the trap to run")
    assert inspect("hup")["State"]["Running"] is True
    kit("kill", "hup")  # default: SIGKILL, as docker kill
    assert wait_for(lambda: stopped("hup"))["State"]["ExitCode"] == 137


def test_kill_of_a_stopped_container_fails(busybox_rootfs: Path) -> None:
    run_d(busybox_rootfs, "true", options=("--name", "done"))
    wait_for(lambda: stopped("done"))
    result = kit("kill", "done", check=False)
    assert result.returncode == 1 and "not running" in result.stderr


def test_rm_refuses_a_running_container_without_force(busybox_rootfs: Path, kit_root: Path) -> None:
    container_id = run_d(busybox_rootfs, "sleep", "1000", options=("--name", "busy"))
    pid = find_record(kit_root, "busy")["pid"]
    refused = kit("rm", "busy", check=False)
    assert refused.returncode == 1 and "kit rm -f" in refused.stderr
    assert alive(pid)
    kit("rm", "-f", "busy")
    assert not alive(pid)
    assert not (kit_root / "run" / "containers" / container_id).exists()


def test_rm_of_an_image_container_removes_its_layer_only(kit_root: Path, tmp_path: Path) -> None:
    from kit.image.store import Store

    image = busybox_image(kit_root, tmp_path)
    Store().init_layer()  # made on first use, shared by every container
    layers_before = sorted(p.name for p in Store().layers.iterdir())
    out = kit("run", "-d", "--name", "img", image, "sh", "-c", "echo x > /new; sleep 1000")
    container_dir = kit_root / "run" / "containers" / out.stdout.strip()
    wait_for(lambda: (container_dir / "upper" / "new").exists(), what="the write")
    kit("rm", "-f", "img")
    assert not container_dir.exists()
    assert sorted(p.name for p in Store().layers.iterdir()) == layers_before
    assert kit("run", "--rm", image, "cat", "/etc/motd").stdout == "from the image\n"


# --- names, ids, inspect ------------------------------------------------------------------------


def test_names_ids_and_prefixes(busybox_rootfs: Path, kit_root: Path) -> None:
    first = run_d(busybox_rootfs, "sleep", "1000", options=("--name", "alpha"))
    second = run_d(busybox_rootfs, "sleep", "1000")
    # The default name is the short id.
    assert find_record(kit_root, second)["name"] == second[:12]
    for key in ("alpha", first, first[:5]):
        assert inspect(key)["Id"] == first
    clash = kit(
        "run", "-d", "--name", "alpha", "--rootfs", str(busybox_rootfs), "true", check=False
    )
    assert clash.returncode == 125 and "already exists" in clash.stderr
    assert len(list((kit_root / "run" / "containers").iterdir())) == 3  # two + the lock file
    common = ""
    for a, b in zip(first, second, strict=True):
        if a != b:
            break
        common += a
    if common:  # rarely, the two random ids share a prefix: then it must be ambiguous
        assert "matches 2" in kit("inspect", common, check=False).stderr
    assert "no such container" in kit("inspect", "nope", check=False).stderr


def test_inspect_shows_config_state_mounts_and_limits(busybox_rootfs: Path) -> None:
    run_d(
        busybox_rootfs,
        "sleep",
        "1000",
        options=("--name", "insp", "--pids-limit", "40", "-e", "COLOUR=blue"),
    )
    document = inspect("insp")
    state = document["State"]
    assert state["Running"] is True and alive(state["Pid"])
    assert document["Config"]["process"]["args"] == ["sleep", "1000"]
    assert "COLOUR=blue" in document["Config"]["process"]["env"]
    mounts = {m["Destination"]: m for m in document["Mounts"]}
    # Read live from the container's mountinfo: what the kernel has, not what was asked.
    assert mounts["/proc"]["Type"] == "proc" and mounts["/proc"]["Propagation"] == "private"
    assert mounts["/sys"]["RW"] is False
    assert document["Limits"]["Resources"]["pids"]["limit"] == 40
    cgroups = document["Limits"]["Cgroups"]
    assert cgroups and all(Path(p).is_dir() for p in cgroups)
    pids_dir = next(p for p in cgroups if "/pids/" in p)
    assert Path(pids_dir, "pids.max").read_text().strip() == "40"
    assert document["Namespaces"]["pid"] != os.stat("/proc/self/ns/pid").st_ino


def test_inspect_reports_the_oom_kill(busybox_rootfs: Path) -> None:
    # `tail` keeps every line of its input in memory: with no newline in sight, 64 MiB of
    # zeros is one line it must hold whole, far above the 16 MiB limit.
    run_d(
        busybox_rootfs,
        "sh",
        "-c",
        "head -c 67108864 /dev/zero | tail -n 1 > /dev/null",
        options=("--name", "hungry", "--memory", "16m", "--memory-swap", "16m"),
    )
    document = wait_for(lambda: stopped("hungry"), timeout=60, what="the OOM kill")
    assert document["State"]["OOMKilled"] is True


@pytest.mark.parametrize("owner_lives", [True, False])
def test_an_exit_is_declared_lost_only_when_its_owner_is_gone(owner_lives: bool) -> None:
    """Between PID 1's exit and its owner (the monitor) recording it, once the OOM count is
    read and the cgroups removed, `kit inspect` must not write that nobody recorded the end:
    it did, and OOMKilled was reported false to whoever looked in that moment."""
    from kit.runtime import state
    from kit.runtime.defaults import default_spec

    ended = subprocess.Popen(["sleep", "0.01"])
    ended_start = state.process_start_time(ended.pid) or 0
    ended.wait()  # a PID 1 that has exited
    owner = subprocess.Popen(["sleep", "100"])
    try:
        owner_start = state.process_start_time(owner.pid) or 0
        if not owner_lives:
            owner.kill()
            owner.wait()
        record = state.ContainerState(
            id="ab" * 32,
            name="owned",
            status=state.RUNNING,
            pid=ended.pid,
            pid_start=ended_start,
            owner_pid=owner.pid,
            owner_start=owner_start,
        )
        state.create(record, default_spec(["true"], "/"))
        seen = state.refresh(state.load(record.id))
        if owner_lives:
            assert (seen.status, seen.error) == (state.RUNNING, None)
        else:
            assert seen.status == state.STOPPED and "nobody recorded" in (seen.error or "")
    finally:
        owner.kill()
        owner.wait()
        state.remove("ab" * 32)


def test_inspect_of_an_image_container_shows_its_layers(kit_root: Path, tmp_path: Path) -> None:
    image = busybox_image(kit_root, tmp_path)
    kit("run", "-d", "--name", "layered", image, "sleep", "1000")
    layers = inspect("layered")["Layers"]
    assert layers["ImageName"] == image
    assert layers["UpperDir"].endswith("/upper") and Path(layers["UpperDir"]).is_dir()
    assert all(Path(p).is_dir() for p in layers["LowerDirs"])


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_commands_keep_state_consistent(busybox_rootfs: Path, kit_root: Path) -> None:
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def start(name: str) -> None:
        results[name] = kit(
            "run",
            "-d",
            "--name",
            name,
            "--rootfs",
            str(busybox_rootfs),
            "sleep",
            "1000",
            check=False,
        )

    names = [f"c{i}" for i in range(8)] + ["same", "same", "same"]
    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    listing: list[str] = []
    lister = threading.Thread(target=lambda: listing.append(kit("ps", "-a", "--json").stdout))
    for t in [*threads, lister]:
        t.start()
    for t in [*threads, lister]:
        t.join()
    json.loads(listing[0])  # a listing taken mid-way is still valid JSON
    assert all(results[f"c{i}"].returncode == 0 for i in range(8))
    rows = json.loads(kit("ps", "--json").stdout)
    assert sorted(r["name"] for r in rows) == sorted({*names})
    for path in (kit_root / "run" / "containers").glob("*/state.json"):
        data = json.loads(path.read_text())
        assert data["status"] == "running" and alive(data["pid"])


# --- a monitor that dies ----------------------------------------------------------------------


def test_container_survives_its_monitor_and_is_still_managed(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    run_d(busybox_rootfs, "sleep", "1000", options=("--name", "orphan"))
    data = find_record(kit_root, "orphan")
    os.kill(data["owner_pid"], signal.SIGKILL)
    wait_for(lambda: not alive(data["owner_pid"]), what="the monitor to die")
    assert alive(data["pid"])
    assert inspect("orphan")["State"]["Running"] is True
    kit("stop", "-t", "0.2", "orphan")
    assert not alive(data["pid"])
    state = inspect("orphan")["State"]
    assert state["Status"] == "stopped" and "nobody recorded" in state["Error"]
