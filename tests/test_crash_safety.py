"""Crash safety: SIGKILL kit at any stage, and the host keeps nothing that `kit rm -f` or
`kit doctor --leaks --clean` cannot remove.

Each test stops kit at a known stage (``--pause-after STAGE``, told by the JSON event stream),
kills it with SIGKILL — the kit CLI alone, or its whole process group (the CLI and the init
parent) — and then checks the host: no process of the container is left, no mount, and what
remains (a stale record, a cgroup, a writable layer) is found by ``kit doctor --leaks`` and
removed by ``--clean``. The leak guard checks the host once more after each test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import kit_popen
from lifecycle_helpers import alive, busybox_image, cmdline, kit, parent_pid, remove_all, wait_for

from kit import mounts
from kit.runtime import pipeline

pytestmark = pytest.mark.usefixtures("kit_root", "containers")

#: This session's pytest base directory (tmp_path's parent), set by the fixture below.
SCOPE = Path("/nonexistent")

#: Every stage a run can stop after (exec does not return).
STAGES = [name for name in pipeline.stage_names() if name != "exec"]


@pytest.fixture
def containers(tmp_path: Path) -> object:
    global SCOPE
    SCOPE = tmp_path.parent
    yield
    remove_all()


class Stopped:
    """``kit run ARGS`` stopped after a stage (``--pause-after``), with what its events said."""

    def __init__(self, events: Path, stage: str, *run_args: str) -> None:
        self.events = events
        self.process = kit_popen(
            "run",
            *("--events", "json", "--events-file", str(events), "--pause-after", stage),
            *run_args,
            stdin=subprocess.PIPE,  # never written: the pause waits
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, to kill it whole
        )
        wait_for(lambda: self._paused(stage), timeout=30, what=f"the pause after {stage}")
        self.container_pid = next(
            int(e["data"]["host_pid"]) for e in self.read() if e["name"] == "container"
        )

    def read(self) -> list[dict]:
        if not self.events.exists():
            return []
        lines = self.events.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def _paused(self, stage: str) -> bool:
        return any(e["kind"] == "pause" and e["name"] == stage for e in self.read())

    def kill(self, whole_group: bool) -> None:
        if whole_group:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait()


def stop_busybox_run(rootfs: Path, tmp_path: Path, stage: str) -> Stopped:
    """``kit run --memory 32m --rootfs ROOTFS sleep 1000`` stopped after STAGE (the memory
    limit makes the run create a cgroup)."""
    events = tmp_path / "events.jsonl"
    return Stopped(events, stage, "--memory", "32m", "--rootfs", str(rootfs), "sleep", "1000")


def host_mounts(scope: Path) -> set[tuple[str, str, str, str]]:
    """The host's mounts that could be this session's: under its pytest base directory, or of
    a kernel filesystem a container mounts (other sessions may mount in their own temp dirs
    meanwhile; those are not ours to judge)."""
    base = str(scope)
    kinds = {"proc", "sysfs", "devpts", "mqueue", "overlay"}
    return {
        m.key
        for m in mounts.read()
        if m.mount_point.startswith(base)
        or m.source.startswith(base)
        or (m.fstype in kinds and not m.mount_point.startswith("/tmp/pytest-of-"))
    }


def leaks() -> tuple[int, str]:
    result = kit("doctor", "--leaks", check=False)
    return result.returncode, result.stdout


def check_host_recovers(before: set, pid: int) -> str:
    """The container is gone and no mount stayed; then doctor finds and cleans the rest.
    Returns what doctor --leaks reported."""
    wait_for(lambda: not alive(pid), timeout=20, what="the container process to die")
    assert host_mounts(SCOPE) == before
    code, report = leaks()
    if code != 0:
        kit("doctor", "--leaks", "--clean")
    assert leaks() == (0, "no leaks: every record, cgroup, mount and monitor is accounted for\n")
    return report


@pytest.mark.parametrize("stage", STAGES)
def test_kill_the_cli_at_each_stage_of_run(
    busybox_rootfs: Path, tmp_path: Path, stage: str
) -> None:
    before = host_mounts(SCOPE)
    stopped = stop_busybox_run(busybox_rootfs, tmp_path, stage)
    stopped.kill(whole_group=False)
    # The init parent saw its caller vanish (end-of-file on the control pipe): it killed the
    # container and removed the cgroup itself. Only the record is left to correct.
    report = check_host_recovers(before, stopped.container_pid)
    assert "cgroup" not in report


@pytest.mark.parametrize("stage", ["namespaces", "cgroups", "rootfs", "pivot-root", "seccomp"])
def test_kill_the_whole_process_group_at_a_stage(
    busybox_rootfs: Path, tmp_path: Path, stage: str
) -> None:
    before = host_mounts(SCOPE)
    stopped = stop_busybox_run(busybox_rootfs, tmp_path, stage)
    stopped.kill(whole_group=True)
    # Nobody was left to remove the cgroup (made in the cgroups stage): doctor finds it.
    report = check_host_recovers(before, stopped.container_pid)
    if STAGES.index(stage) >= STAGES.index("cgroups"):
        assert "cgroup" in report
    assert "record" in report


def test_kill_during_an_image_run_leaves_a_layer_kit_rm_removes(
    kit_root: Path, tmp_path: Path
) -> None:
    image = busybox_image(kit_root, tmp_path)
    before = host_mounts(SCOPE)
    stopped = Stopped(tmp_path / "events.jsonl", "rootfs", "--name", "img", image, "sleep", "1000")
    stopped.kill(whole_group=True)
    wait_for(lambda: not alive(stopped.container_pid), what="the container to die")
    assert host_mounts(SCOPE) == before  # the overlay died with its namespace
    layer = next((kit_root / "run" / "containers").glob("*/upper"))
    kit("rm", "-f", "img")
    assert not layer.exists()
    assert leaks()[0] == 0


def test_kill_oci_create_at_a_stage(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    kit("spec", "--bundle", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(busybox_rootfs)
    config["process"]["args"] = ["sleep", "1000"]
    config["process"]["terminal"] = False
    config["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "pids": {"limit": 50},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    before = host_mounts(SCOPE)
    process = kit_popen(
        "create",
        *("--bundle", str(bundle), "--pause-after", "pivot-root", "oci1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    assert "paused after pivot-root" in process.stderr.readline().decode()
    pid = json.loads(kit("state", "oci1").stdout)["pid"] or None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert json.loads(kit("state", "oci1").stdout)["status"] == "stopped"
    if pid:
        wait_for(lambda: not alive(pid))
    time.sleep(0.1)
    assert host_mounts(SCOPE) == before
    kit("delete", "oci1")  # removes the record and the cgroups (pids, devices)
    assert leaks()[0] == 0


def test_kill_exec_takes_the_execd_process_down(busybox_rootfs: Path) -> None:
    kit("run", "-d", "--name", "web", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    for whole_group in (False, True):
        process = kit_popen(
            *("exec", "web", "sh", "-c", "echo ready; exec sleep 999"),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        rows = kit("top", "web").stdout.splitlines()[1:]
        execd = next(int(r.split()[1]) for r in rows if r.split()[-2:] == ["sleep", "999"])
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)  # CLI and joiner: parent-death signal
        else:
            process.kill()  # CLI only: the joiner sees end-of-file and kills its child
        process.wait()
        process.stdout.close()
        wait_for(lambda pid=execd: not alive(pid), what="the exec'd process to die")
    # Nothing of the exec'd program runs. (Killed after its parent, the joiner, it may stay a
    # zombie until the container's PID 1 reaps it: `sleep` never does, as with any runtime.)
    assert "sleep 999" not in kit("top", "web").stdout
    assert leaks()[0] == 0


def test_kill_a_build_during_a_run_step(
    kit_root: Path, tmp_path: Path, busybox_rootfs: Path
) -> None:
    import tarfile

    context = tmp_path / "context"
    context.mkdir()
    with tarfile.open(context / "root.tar", "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    (context / "Kitfile").write_text(
        "FROM scratch\nADD root.tar /\nRUN echo started > /started; sleep 1000\n"
    )
    before = host_mounts(SCOPE)
    process = kit_popen(
        *("build", "-t", "crash:1", str(context)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    sleeper = wait_for(
        lambda: next(
            (
                int(p)
                for p in os.listdir("/proc")
                if p.isdigit()
                and cmdline(int(p)) == "sleep 1000"
                and _environ_has(int(p), "KIT_") is False
                and _descends_from(int(p), process.pid)
            ),
            None,
        ),
        timeout=60,
        what="the RUN step to start",
    )
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()
    wait_for(lambda: not alive(sleeper), what="the RUN step's container to die")
    assert host_mounts(SCOPE) == before
    if leaks()[0]:
        kit("doctor", "--leaks", "--clean")
    assert leaks()[0] == 0


def _environ_has(pid: int, text: str) -> bool | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return None


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = parent_pid(pid)
        except OSError:
            return False
    return False
