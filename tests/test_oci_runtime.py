"""kit as an OCI runtime: runc's command line on OCI bundles.

The lifecycle of the runtime spec (create, start, state, kill, delete) is checked on the real
kernel: a created container exists (namespaces, PID) but its program has not run; start runs
it; the state JSON follows the spec. config.json fields kit cannot honour are refused or
reported. runc is the oracle for the same bundle: both must produce the same security state
in the container.
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
from typing import Any

import pytest
from helpers import SECURITY_STATUS, kit_popen, status_fields
from lifecycle_helpers import alive, kit, ns_ids, remove_all, wait_for

pytestmark = pytest.mark.usefixtures("kit_root", "containers")


@pytest.fixture
def containers() -> object:
    yield
    remove_all()


def make_bundle(
    base: Path, rootfs: Path, args: list[str], *, change: Any = None, marker: str = ""
) -> Path:
    """A bundle from `kit spec`, with ``args`` as the process and /out bound to base/out."""
    bundle = base / "bundle"
    bundle.mkdir(parents=True)
    (base / "out").mkdir()
    kit("spec", "--bundle", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    # The leak guard finds processes naming the test's tmp path: the container says it.
    config["process"]["env"].append(f"KIT_TEST={marker or base}")
    config["mounts"].append(
        {"destination": "/out", "type": "bind", "source": str(base / "out"), "options": ["rbind"]}
    )
    if change:
        change(config)
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


def create(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``kit create`` (or ``kit run -d --bundle``) with its stdio in files.

    The created container inherits the caller's stdio (the engine's pipes, under conmon) and
    keeps it: reading kit's output to end-of-file would wait for the container to end.
    """
    out = Path(os.environ["KIT_ROOT"]).parent / f"create-{time.monotonic_ns()}.out"
    with open(out, "w") as stdout, open(f"{out}.err", "w") as stderr:
        result = subprocess.run(
            [sys.executable, "-m", "kit", *args], stdout=stdout, stderr=stderr, timeout=60
        )
    completed = subprocess.CompletedProcess(
        result.args, result.returncode, out.read_text(), Path(f"{out}.err").read_text()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kit {' '.join(args)}: {completed.stderr}")
    return completed


def state(container_id: str) -> dict[str, Any]:
    return json.loads(kit("state", container_id).stdout)


# --- the lifecycle ----------------------------------------------------------------------------


def test_create_start_state_kill_delete(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path, busybox_rootfs, ["sh", "-c", "echo $$ > /out/started; exec sleep 1000"]
    )
    pid_file = tmp_path / "pid"
    create("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1")
    created = state("c1")
    pid = int(pid_file.read_text())
    assert created["status"] == "created" and created["pid"] == pid and alive(pid)
    assert created["bundle"] == str(bundle) and created["id"] == "c1"
    assert created["ociVersion"].startswith("1.")
    # Created means every namespace exists, and the program has not run yet.
    assert ns_ids(pid)["pid"] != ns_ids("self")["pid"]
    assert not (tmp_path / "out" / "started").exists()
    kit("start", "c1")
    wait_for(lambda: (tmp_path / "out" / "started").exists(), what="the program")
    assert (tmp_path / "out" / "started").read_text().strip() == "1"
    assert state("c1")["status"] == "running"
    kit("kill", "c1", "KILL")
    wait_for(lambda: state("c1")["status"] == "stopped", what="the stop")
    assert state("c1")["pid"] == 0
    kit("delete", "c1")
    missing = kit("state", "c1", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_start_only_a_created_container(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    create("create", "--bundle", str(bundle), "c2")
    kit("start", "c2")
    again = kit("start", "c2", check=False)
    assert again.returncode == 1 and "running, not created" in again.stderr


def test_start_after_the_process_died_says_so(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    pid_file = tmp_path / "pid"
    create("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c3")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    wait_for(lambda: state("c3")["status"] == "stopped")
    refused = kit("start", "c3", check=False)
    assert refused.returncode == 1 and "stopped, not created" in refused.stderr


def test_delete_needs_force_while_running(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    pid_file = tmp_path / "pid"
    create("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c4")
    kit("start", "c4")
    refused = kit("delete", "c4", check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    kit("delete", "--force", "c4")
    assert not alive(int(pid_file.read_text()))


def test_delete_of_a_created_container_needs_no_force(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    pid_file = tmp_path / "pid"
    create("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c5")
    kit("delete", "c5")
    assert not alive(int(pid_file.read_text()))


def test_kill_takes_names_and_numbers_and_defaults_to_term(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    script = "trap 'echo hup >> /out/log' HUP; trap 'echo term >> /out/log; exit 0' TERM; "
    script += "echo ready > /out/ready; while :; do sleep 0.1; done"
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", script])
    create("create", "--bundle", str(bundle), "c6")
    kit("start", "c6")
    wait_for(lambda: (tmp_path / "out" / "ready").exists())
    kit("kill", "c6", "SIGHUP")
    wait_for(
        lambda: (
            "hup" in (tmp_path / "out" / "log").read_text()
            if (tmp_path / "out" / "log").exists()
            else False
        )
    )
    kit("kill", "c6")  # runc's default: SIGTERM
    wait_for(lambda: state("c6")["status"] == "stopped")
    assert (tmp_path / "out" / "log").read_text() == "hup\nterm\n"
    stopped = kit("kill", "c6", "9", check=False)
    assert stopped.returncode == 1 and "not running" in stopped.stderr


def test_kill_reads_a_signal_number_even_when_an_id_starts_with_it(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    """podman calls `kill ID 9`; an id starting with "9" must not make "9" a second container
    (it once did: SIGTERM went out instead, which PID 1 ignores, and the container lived)."""
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    create("create", "--bundle", str(bundle), "9f3c")
    kit("start", "9f3c")
    kit("kill", "9f3c", "9")
    wait_for(lambda: state("9f3c")["status"] == "stopped")
    kit("delete", "9f3c")


def test_annotations_are_in_the_state(busybox_rootfs: Path, tmp_path: Path) -> None:
    def annotate(config: dict[str, Any]) -> None:
        config["annotations"] = {"org.example.owner": "tests"}

    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"], change=annotate)
    create("create", "--bundle", str(bundle), "c7")
    assert state("c7")["annotations"] == {"org.example.owner": "tests"}


def test_run_bundle_in_the_foreground(busybox_rootfs: Path, tmp_path: Path, kit_root: Path) -> None:
    bundle = make_bundle(
        tmp_path, busybox_rootfs, ["sh", "-c", "echo hello from $(hostname); exit 3"]
    )
    result = kit("run", "--bundle", str(bundle), "r1", check=False)
    assert result.returncode == 3 and result.stdout == "hello from kit\n"
    assert not (kit_root / "run" / "containers" / "r1").exists()  # deleted at exit (no --keep)


def test_run_bundle_passes_signals_on(busybox_rootfs: Path, tmp_path: Path, kit_root: Path) -> None:
    """`kit run --bundle` in the foreground passes a caller's signal on (kit.forwarding) to the
    container's PID 1, which handles it (a PID 1 gets only the signals it handles), instead of
    kit dying and leaving the container running; kit then deletes the container."""
    script = 'trap "echo got-USR2; exit 42" USR2; echo ready; while true; do sleep 0.05; done'
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", script])
    process = kit_popen("run", "--bundle", str(bundle), "r3", stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGUSR2)
    assert process.wait(timeout=30) == 42
    assert process.stdout.read() == "got-USR2\n"
    assert not (kit_root / "run" / "containers" / "r3").exists()


def test_run_bundle_detached(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "touch /out/ran; exec sleep 1000"])
    pid_file = tmp_path / "pid"
    create("run", "--bundle", str(bundle), "-d", "--pid-file", str(pid_file), "r2")
    assert state("r2")["status"] == "running"
    wait_for(lambda: (tmp_path / "out" / "ran").exists())
    assert alive(int(pid_file.read_text()))


def test_console_socket_receives_the_terminal(busybox_rootfs: Path, tmp_path: Path) -> None:
    def with_terminal(config: dict[str, Any]) -> None:
        config["process"]["terminal"] = True
        config["process"]["consoleSize"] = {"height": 33, "width": 111}

    bundle = make_bundle(
        tmp_path, busybox_rootfs, ["sh", "-c", "tty; stty size"], change=with_terminal
    )
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        creating = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kit",
                "create",
                "--bundle",
                str(bundle),
                "--console-socket",
                path,
                "t1",
            ]
        )
        connection, _ = server.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 64, 1)
        assert creating.wait(timeout=30) == 0
    master = fds[0]
    kit("start", "t1")
    output = b""
    while True:
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert output.decode().split() == ["/dev/pts/0", "33", "111"]


# --- config.json: honoured, adapted, or refused -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c["linux"].__setitem__("intelRdt", {"closID": "x"}), "linux.intelRdt"),
        (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "/bin/true"}]}), "hooks"),
        (lambda c: c["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"}), "linux.sysctl"),
        (
            lambda c: c["process"].__setitem__("ioPriority", {"class": "IOPRIO_CLASS_RT"}),
            "process.ioPriority",
        ),
        (
            lambda c: c["linux"].__setitem__("resources", {"cpu": {"cpus": "0"}}),
            "linux.resources.cpu.cpus/mems",
        ),
    ],
)
def test_fields_kit_cannot_honour_are_refused(
    busybox_rootfs: Path, tmp_path: Path, kit_root: Path, change: Any, words: str
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["true"], change=change)
    refused = create("create", "--bundle", str(bundle), "bad", check=False)
    assert refused.returncode == 1
    assert words in refused.stderr and "cannot do" in refused.stderr
    assert not (kit_root / "run" / "containers" / "bad").exists()


def test_harmless_unknown_fields_and_adaptations_are_reported(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    def change(config: dict[str, Any]) -> None:
        config["vm"] = {"hypervisor": {"path": "/nope"}}
        config["process"]["oomScoreAdj"] = 100
        config["mounts"].append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["ro"],
            }
        )
        caps = config["process"]["capabilities"]
        caps["ambient"] = ["CAP_KILL"]
        caps["inheritable"] = []

    script = "cat /proc/self/status | grep CapAmb; grep ' /sys/fs/cgroup ' /proc/self/mountinfo"
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", script], change=change)
    result = kit("run", "--bundle", str(bundle), "warned")
    warnings = result.stderr
    assert "kit: warning: vm: unknown to kit; ignored" in warnings
    assert "process.oomScoreAdj" in warnings and "ambient" in warnings
    assert "CapAmb:\t0000000000000000" in result.stdout
    mount_line = result.stdout.splitlines()[-1].split()
    assert mount_line[4] == "/sys/fs/cgroup" and "ro" in mount_line[5].split(",")
    assert mount_line[mount_line.index("-") + 1] == "tmpfs"


def test_devices_cgroup_enforces_the_device_rules(busybox_rootfs: Path, tmp_path: Path) -> None:
    """podman's rule (deny every device) plus the standard nodes: mknod of a disk works
    (CAP_MKNOD), opening it fails with EPERM from the devices cgroup; /dev/null works. The
    same bundle with an allow-all rule instead gets past the cgroup (and meets the kernel's
    ENXIO or the disk itself). Without any rule the standard list applies, as with runc
    (tests/test_devices.py)."""

    def with_mknod(config: dict[str, Any]) -> None:
        caps = config["process"]["capabilities"]
        for name in ("bounding", "effective", "permitted"):
            caps[name] = sorted({*caps.get(name, []), "CAP_MKNOD"})

    def deny_all(config: dict[str, Any]) -> None:
        with_mknod(config)
        config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}

    # /dev is the container's own tmpfs (without nodev, unlike /tmp).
    script = "mknod /dev/disk b 8 0 && echo made; head -c 1 /dev/disk > /dev/null; "
    script += "echo x > /dev/null && echo null-ok"
    guarded = make_bundle(tmp_path / "a", busybox_rootfs, ["sh", "-c", script], change=deny_all)
    result = kit("run", "--bundle", str(guarded), "devs", check=False)
    assert "made" in result.stdout and "null-ok" in result.stdout
    assert "Operation not permitted" in result.stderr

    def allow_all(config: dict[str, Any]) -> None:
        with_mknod(config)
        config["linux"]["resources"] = {"devices": [{"allow": True, "access": "rwm"}]}

    open_bundle = make_bundle(
        tmp_path / "b", busybox_rootfs, ["sh", "-c", script], change=allow_all
    )
    control = kit("run", "--bundle", str(open_bundle), "devs2", check=False)
    assert "made" in control.stdout and "Operation not permitted" not in control.stderr


def test_log_file_in_json(busybox_rootfs: Path, tmp_path: Path) -> None:
    log = tmp_path / "kit.log"
    failed = kit("--log", str(log), "--log-format", "json", "start", "nothing", check=False)
    assert failed.returncode == 1
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["level"] == "error" and "does not exist" in record["msg"] and record["time"]


def test_ids_are_checked(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sleep", "1000"])
    assert create("create", "--bundle", str(bundle), "../evil", check=False).returncode == 2
    create("create", "--bundle", str(bundle), "dup")
    again = create("create", "--bundle", str(bundle), "dup", check=False)
    assert again.returncode == 125 and "already exists" in again.stderr


def test_systemd_cgroup_paths_are_refused(busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path,
        busybox_rootfs,
        ["true"],
        change=lambda c: c["linux"].__setitem__("cgroupsPath", "system.slice:kit:x"),
    )
    refused = kit("--systemd-cgroup", "create", "--bundle", str(bundle), "sd", check=False)
    assert refused.returncode == 1 and "cgroup-manager cgroupfs" in refused.stderr


# --- the same bundle under runc and kit -------------------------------------------------------

REPORT = (
    f"grep -E '^({'|'.join(SECURITY_STATUS)}):' "
    "/proc/self/status; cat /proc/self/mountinfo; hostname; id"
)


def mount_options(mountinfo: str) -> dict[str, tuple[str, str]]:
    """mount point -> (per-mount options, filesystem type) for the kernel filesystems."""
    out = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        point = fields[4]
        if point in (
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/proc/kcore",
            "/proc/sys",
        ):
            options = ",".join(o for o in fields[5].split(",") if o not in ("relatime", "noatime"))
            out[point] = (options, fields[fields.index("-") + 1])
    return out


def split_report(text: str) -> tuple[dict[str, str], dict[str, tuple[str, str]], list[str]]:
    """The report's security status fields, kernel filesystem mounts, hostname and id lines."""
    return status_fields(text), mount_options(text), text.splitlines()[-2:]


def test_runc_and_kit_give_the_same_security_state(busybox_rootfs: Path, tmp_path: Path) -> None:
    """runc's own `runc spec` bundle, run by both: capabilities, no_new_privs, seccomp mode,
    ids, hostname and the flags of the kernel filesystems must be the same."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(busybox_rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", REPORT]
    config["process"]["env"].append(f"KIT_TEST={tmp_path}")
    (bundle / "config.json").write_text(json.dumps(config))
    runc_root = tmp_path / "runc-state"
    theirs = subprocess.run(
        ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), "same"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = kit("run", "--bundle", str(bundle), "same").stdout
    their_status, their_mounts, their_tail = split_report(theirs)
    our_status, our_mounts, our_tail = split_report(ours)
    assert our_status == their_status
    assert our_mounts == their_mounts
    assert our_tail == their_tail  # hostname "runc", uid 0


def test_kit_spec_bundle_runs_under_runc_too(busybox_rootfs: Path, tmp_path: Path) -> None:
    """`kit spec` writes a config.json runc accepts: the same format, not a dialect."""
    bundle = make_bundle(tmp_path, busybox_rootfs, ["sh", "-c", "echo ok from $(hostname)"])
    runc = subprocess.run(
        [
            "runc",
            "--root",
            str(tmp_path / "runc-state"),
            "run",
            "--bundle",
            str(bundle),
            "spec-test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert runc.returncode == 0, runc.stderr
    assert runc.stdout == "ok from kit\n"
    assert kit("run", "--bundle", str(bundle), "spec-test").stdout == "ok from kit\n"


def test_kit_spec_does_not_overwrite(tmp_path: Path) -> None:
    kit("spec", "--bundle", str(tmp_path))
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["root"]["path"] == "rootfs" and data["process"]["args"] == ["sh"]
    again = kit("spec", "--bundle", str(tmp_path), check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    time.sleep(0)
