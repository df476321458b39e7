"""``kit doctor``: real checks on this machine, checked against independent oracles, and the
pure parsing behind them (cgroup modes, propagation, container hints, ids, distributions).

This machine (the CI host) is root, with every namespace type, overlayfs with ``userxattr`` and
``lowerdir+``, cgroup v1 controllers plus an empty v2 tree (hybrid), seccomp and Landlock.
Oracles are util-linux (``unshare``, ``mount``, ``setpriv``), the mount table and /proc.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import kit_command

from kit import doctor, mounts
from kit.doctor import Check, Host
from kit.errors import KitError
from kit.linux import newmount

EXPECTED_CHECKS = {
    "python",
    "privileges",
    "user namespaces",
    "namespaces",
    "overlayfs",
    "mount propagation",
    "cgroups",
    "seccomp",
    "landlock",
    "security modules",
    "environment",
    "subordinate ids",
    "busybox",
    "runc",
    "umoci",
    "skopeo",
    "podman",
    "tmux",
}


@pytest.fixture(scope="module")
def checks() -> dict[str, Check]:
    """One run of every check on this machine, by name."""
    return {check.name: check for check in doctor.run_checks()}


def _overlay_oracle(tmp_path: Path, options: str) -> subprocess.CompletedProcess[str]:
    """Mount an overlay with util-linux in a private mount namespace (nothing leaks)."""
    for name in ("l1", "l2", "upper", "work", "merged"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    (tmp_path / "l1" / "one").write_text("1")
    (tmp_path / "l2" / "two").write_text("2")
    data = options.format(t=tmp_path) + f",upperdir={tmp_path}/upper,workdir={tmp_path}/work"
    script = f"mount -t overlay overlay -o {data} {tmp_path}/merged && ls {tmp_path}/merged"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )


# ----------------------------------------------------------------------------------------------
# Real checks on this machine
# ----------------------------------------------------------------------------------------------


def test_every_check_runs_with_a_valid_status(checks: dict[str, Check]) -> None:
    assert set(checks) == EXPECTED_CHECKS
    for check in checks.values():
        assert check.status in doctor.STATUSES
        assert check.detail, check.name
        if check.status != "ok":
            assert check.fix, f"{check.name} is {check.status} without a fix"
        if "the check itself failed" in check.detail:
            pytest.fail(f"{check.name}: {check.detail}")


def test_this_machine_can_run_containers(checks: dict[str, Check]) -> None:
    failed = [f"{c.name}: {c.detail}" for c in checks.values() if c.status == "fail"]
    assert failed == []
    assert doctor.can_run_containers(list(checks.values()))
    assert doctor.explain_blockers(list(checks.values())).startswith("This machine can run")


def test_root_with_cap_sys_admin(checks: dict[str, Check]) -> None:
    assert os.geteuid() == 0, "the CI machine runs tests as root"
    check = checks["privileges"]
    assert check.status == "ok"
    assert check.data == {"euid": 0, "cap_sys_admin": True}


def test_rootless_user_namespaces_work_for_nobody(checks: dict[str, Check]) -> None:
    check = checks["user namespaces"]
    assert check.status == "ok", check.detail
    assert check.data["self"] is True
    assert check.data["unprivileged"] is True
    assert "as nobody (uid 65534)" in check.detail
    # The oracle: util-linux, as nobody, creates a user + mount namespace and mounts a tmpfs.
    oracle = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs none /mnt && echo mounted",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert oracle.stdout.strip() == "mounted", oracle.stderr


def test_every_namespace_type_is_created(checks: dict[str, Check]) -> None:
    check = checks["namespaces"]
    assert check.status == "ok", check.detail
    assert set(check.data["available"]) == set(doctor.NAMESPACE_KINDS)
    assert check.data["missing"] == {}
    for ns_file, _, _ in doctor.NAMESPACE_KINDS.values():
        assert os.path.exists(f"/proc/self/ns/{ns_file}")


def test_overlay_works_with_userxattr_and_lowerdir_plus(
    checks: dict[str, Check], tmp_path: Path
) -> None:
    check = checks["overlayfs"]
    assert check.status == "ok", check.detail
    assert check.data["mount"] is True
    assert check.data["userxattr"] is True
    assert check.data["userxattr_verified"] is True  # user.overlay.opaque was seen in upper
    assert check.data["lowerdir_plus"] is True
    assert "lowerdir+ works" in check.detail and "userxattr works" in check.detail
    # The oracle: util-linux mounts both option forms; a made-up option is refused, so the
    # oracle can tell supported from unsupported.
    plus = _overlay_oracle(tmp_path / "plus", "lowerdir+={t}/l1,lowerdir+={t}/l2")
    assert plus.returncode == 0, plus.stderr
    assert plus.stdout.split() == ["one", "two"]
    xattr = _overlay_oracle(tmp_path / "xattr", "lowerdir={t}/l1:{t}/l2,userxattr")
    assert xattr.returncode == 0, xattr.stderr
    bogus = _overlay_oracle(tmp_path / "bogus", "lowerdir++={t}/l1")
    assert bogus.returncode != 0


def test_overlay_reports_the_data_root_filesystem(checks: dict[str, Check], tmp_path: Path) -> None:
    from kit.paths import data_root

    check = checks["overlayfs"]
    assert check.data["data_root"] == str(data_root())
    assert check.data["data_root_fs"] in ("ext4", "tmpfs", "xfs", "btrfs")
    # A data root inside a Docker container's own overlayfs (or below it, not yet created).
    fake = (
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"90 27 0:50 / {tmp_path} rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
    )
    assert doctor.filesystem_of(tmp_path / "kit" / "not-yet", fake) == "overlay"
    assert doctor.filesystem_of(tmp_path.parent, fake) == "ext4"


def test_cgroups_are_hybrid_here_with_v1_memory_and_pids(checks: dict[str, Check]) -> None:
    check = checks["cgroups"]
    table = mounts.read()
    has_v2 = any(m.fstype == "cgroup2" for m in table)
    assert check.data["mode"] == ("hybrid" if has_v2 else "v1")
    assert check.status == "ok", check.detail
    memory = next(m for m in table if m.fstype == "cgroup" and "memory" in m.super_options)
    pids = next(m for m in table if m.fstype == "cgroup" and "pids" in m.super_options)
    assert check.data["controllers"]["memory"] == f"v1 {memory.mount_point}"
    assert check.data["controllers"]["pids"] == f"v1 {pids.mount_point}"
    assert os.path.exists(os.path.join(memory.mount_point, "memory.limit_in_bytes"))
    assert "memory.limit_in_bytes" in check.detail  # the v1 lesson, not the v2 one


def test_seccomp_is_available_for_this_architecture(checks: dict[str, Check]) -> None:
    check = checks["seccomp"]
    assert check.status == "ok", check.detail
    status = Path("/proc/self/status").read_text()
    seccomp_line = next(line for line in status.splitlines() if line.startswith("Seccomp:"))
    assert check.data["status_field"] == seccomp_line.split()[1]
    assert check.data["prctl"] == int(seccomp_line.split()[1])
    assert {"ERRNO", "KILL_PROCESS", "ALLOW"} <= set(check.data["actions"])
    assert check.data["arch"] == platform.machine()
    assert check.data["audit_arch"] == doctor.AUDIT_ARCH[platform.machine()][0]


def test_landlock_abi_is_at_least_one(checks: dict[str, Check]) -> None:
    check = checks["landlock"]
    assert check.status == "ok", check.detail
    assert check.data["abi"] >= 1
    # The oracle: the same question asked through plain ctypes, without kit's wrappers.
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 444, "aarch64": 444}[platform.machine()]
    abi = libc.syscall(ctypes.c_long(number), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    assert check.data["abi"] == abi
    assert check.data["in_lsm_list"] is True


def test_security_modules_name_the_active_lsms(checks: dict[str, Check]) -> None:
    check = checks["security modules"]
    assert check.status == "ok", check.detail
    assert "landlock" in check.data["lsm"]
    apparmor = Path("/sys/module/apparmor/parameters/enabled")
    assert check.data["apparmor"] is (apparmor.exists() and apparmor.read_text().strip() == "Y")
    assert check.data["selinux_enforce"] is None or os.path.exists("/sys/fs/selinux/enforce")


def test_propagation_of_root_matches_the_mount_table(checks: dict[str, Check]) -> None:
    check = checks["mount propagation"]
    root = mounts.find(mounts.read(), "/")
    assert root is not None
    assert check.data["propagation"] == root.propagation
    assert "private" in check.detail  # the lesson mentions why kit makes its tree private


def test_environment_hints_follow_the_files(checks: dict[str, Check]) -> None:
    check = checks["environment"]
    assert ("dockerenv" in check.data["hints"]) is os.path.exists("/.dockerenv")
    assert check.status == ("warn" if check.data["hints"] else "ok")


def test_python_and_tools(checks: dict[str, Check]) -> None:
    assert checks["python"].status == "ok"
    assert checks["python"].data["version"] == platform.python_version()
    for tool in ("runc", "umoci", "skopeo", "podman", "tmux"):
        found = shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin:/sbin")
        assert checks[tool].status == ("ok" if found else "warn")
        assert checks[tool].data["path"] == found
    busybox = checks["busybox"]
    assert busybox.status == "ok", busybox.detail
    assert busybox.data["static"] is True
    assert shutil.which("busybox") == busybox.data["path"]


def test_subordinate_ids_as_root(checks: dict[str, Check]) -> None:
    check = checks["subordinate ids"]
    assert check.status == "ok"
    assert "needs no ranges" in check.detail
    assert check.data["tools"]["newuidmap"] == shutil.which("newuidmap")


def test_run_checks_from_a_thread_leaves_nothing_behind() -> None:
    """The TUI calls the doctor from a worker thread: the probe must still work (it re-execs
    instead of forking), and leave no mount, file or process on the host."""
    tmp_before = set(os.listdir("/tmp"))
    mounts_before = {m.key for m in mounts.read()}
    found: list[list[Check]] = []
    worker = threading.Thread(target=lambda: found.append(doctor.run_checks()))
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    by_name = {c.name: c for c in found[0]}
    assert by_name["user namespaces"].data["unprivileged"] is True
    assert by_name["overlayfs"].data["lowerdir_plus"] is True
    assert {m.key for m in mounts.read()} == mounts_before
    leftovers = {n for n in set(os.listdir("/tmp")) - tmp_before if n.startswith("classic")}
    assert leftovers == set()


def test_probe_events_are_re_emitted_on_the_tracer() -> None:
    from kit.trace import tracer

    with tracer().capture() as events:
        doctor.probe("namespaces")
    calls = [e.format() for e in events if e.kind == "syscall"]
    assert "unshare(CLONE_NEWUTS) = 0" in calls
    assert "unshare(CLONE_NEWTIME) = 0" in calls


# ----------------------------------------------------------------------------------------------
# kit doctor on the command line
# ----------------------------------------------------------------------------------------------


def test_cli_json(kit_root: Path) -> None:
    done = kit_command("doctor", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["can_run_containers"] is True
    names = {c["name"]: c for c in report["checks"]}
    assert set(names) == EXPECTED_CHECKS
    assert names["overlayfs"]["data"]["data_root"] == str(kit_root)
    assert names["cgroups"]["data"]["mode"] in ("hybrid", "v1")
    assert names["landlock"]["data"]["abi"] >= 1
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix", "data"}


def test_cli_plain_lines_and_trace(kit_root: Path) -> None:
    done = kit_command("doctor", "--trace", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith(" ")]
    marks = [line.split()[0] for line in lines[: len(EXPECTED_CHECKS)]]
    assert set(marks) <= {"✓", "!", "✗"}
    assert any(line.startswith("✓ overlayfs: ") for line in lines)
    for line in lines:
        if line.startswith("! "):
            index = done.stdout.splitlines().index(line)
            assert done.stdout.splitlines()[index + 1].strip().startswith("fix: ")
    assert 'mount("overlay", ' in done.stderr
    assert "fsconfig(" in done.stderr and '"lowerdir+"' in done.stderr


# ----------------------------------------------------------------------------------------------
# The new mount API's errors carry the kernel's own message
# ----------------------------------------------------------------------------------------------


def test_fsconfig_failure_quotes_the_kernel() -> None:
    fd = newmount.fsopen("overlay")
    try:
        with pytest.raises(KitError) as caught:
            newmount.set_string(fd, "lowerdir++", "/nonexistent")
    finally:
        os.close(fd)
    assert caught.value.errno == errno.EINVAL
    assert "Unknown parameter 'lowerdir++'" in str(caught.value)
    assert "lowerdir+" in (caught.value.fix or "")


def test_fsopen_of_an_unknown_filesystem_explains() -> None:
    with pytest.raises(KitError) as caught:
        newmount.fsopen("no-such-fs")
    assert caught.value.errno == errno.ENODEV
    assert "no-such-fs is not known" in str(caught.value)


# ----------------------------------------------------------------------------------------------
# Pure parsing
# ----------------------------------------------------------------------------------------------

_V1_HOST = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
"""

_HYBRID_HOST = (
    _V1_HOST + "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate\n"
)

_V2_HOST = """\
24 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""


def test_cgroup_mode_v1() -> None:
    layout = doctor.parse_cgroup_layout(_V1_HOST)
    assert layout.mode == "v1"
    assert layout.v2 is None
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.where("memory") == "v1 /sys/fs/cgroup/memory"
    assert layout.where("pids") == "v1 /sys/fs/cgroup/pids"
    assert layout.named == {"name=systemd": "/sys/fs/cgroup/systemd"}
    assert "xattr" not in layout.v1


def test_cgroup_mode_hybrid() -> None:
    layout = doctor.parse_cgroup_layout(_HYBRID_HOST, "")
    assert layout.mode == "hybrid"
    assert layout.v2 == "/sys/fs/cgroup/unified"
    assert layout.v2_controllers == ()
    assert layout.where("memory") == "v1 /sys/fs/cgroup/memory"


def test_cgroup_mode_v2() -> None:
    layout = doctor.parse_cgroup_layout(_V2_HOST, "cpuset cpu io memory pids\n")
    assert layout.mode == "v2"
    assert layout.v1 == {}
    assert layout.where("memory") == "v2 /sys/fs/cgroup"
    assert layout.where("cpu") == "v2 /sys/fs/cgroup"
    assert layout.where("hugetlb") is None


def test_cgroup_mode_none_and_read_only() -> None:
    assert doctor.parse_cgroup_layout("27 1 254:0 / / rw - ext4 /dev/vda rw\n").mode == "none"
    docker = "50 40 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n"
    layout = doctor.parse_cgroup_layout(docker, "memory pids")
    assert layout.mode == "v2"
    assert layout.read_only == ("/sys/fs/cgroup",)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("shared:1", "shared"),
        ("", "private"),
        ("master:5", "slave"),
        ("shared:2 master:1", "shared+slave"),
        ("unbindable", "unbindable"),
    ],
)
def test_root_propagation(tags: str, expected: str) -> None:
    text = f"27 1 254:0 / / rw,relatime {tags} - ext4 /dev/vda rw\n".replace("  ", " ")
    kind, raw = doctor.root_propagation(text)
    assert kind == expected
    assert raw == tags


def test_root_propagation_uses_the_topmost_root_mount() -> None:
    text = (
        "1 0 0:1 / / rw shared:1 - rootfs rootfs rw\n"
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    )
    assert doctor.root_propagation(text) == ("private", "")
    assert doctor.root_propagation("22 27 0:21 / /proc rw - proc proc rw\n")[0] == "unknown"


def test_container_hints() -> None:
    clean = doctor.container_hints(
        dockerenv=False,
        containerenv=False,
        pid1_cgroup="0::/init.scope\n",
        pid1_environ="HOME=/\0TERM=linux\0",
        proc_version="Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)",
    )
    assert clean == {}
    docker = doctor.container_hints(
        dockerenv=True,
        containerenv=False,
        pid1_cgroup="0::/system.slice/docker-4f1e.scope\n",
        pid1_environ="container=docker\0",
        proc_version="",
    )
    assert set(docker) == {"dockerenv", "cgroup", "environ"}
    wsl2 = doctor.container_hints(
        dockerenv=False,
        containerenv=False,
        pid1_cgroup="",
        pid1_environ="",
        proc_version="Linux version 5.15.133.1-microsoft-standard-WSL2",
    )
    assert set(wsl2) == {"wsl2"}
    wsl1 = doctor.container_hints(
        dockerenv=False,
        containerenv=False,
        pid1_cgroup="",
        pid1_environ="",
        proc_version="Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)",
    )
    assert set(wsl1) == {"wsl1"}


def test_parse_subids() -> None:
    text = "alice:100000:65536\n1001:200000:65536\nbob:300000:10\nbroken line\n"
    assert doctor.parse_subids(text, "alice", 1000) == [(100000, 65536)]
    assert doctor.parse_subids(text, "carol", 1001) == [(200000, 65536)]
    assert doctor.parse_subids(text, "dave", 1002) == []


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ('ID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 24.04 LTS"\n', "debian"),
        ("ID=debian\nVERSION_ID=12\n", "debian"),
        ("ID=fedora\nVERSION_ID=40\n", "fedora"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
        ("ID=arch\n", "arch"),
        ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "suse"),
        ("ID=nixos\n", "unknown"),
    ],
)
def test_distro_family(text: str, family: str) -> None:
    assert doctor.distro_family(doctor.parse_os_release(text)) == family


def test_fix_commands_per_distribution() -> None:
    assert Host("debian", "Debian", root=True).install("busybox") == "apt install busybox-static"
    assert Host("debian", "Debian", root=False).install("uidmap") == "sudo apt install uidmap"
    assert Host("fedora", "Fedora", root=False).install("uidmap") == "sudo dnf install shadow-utils"
    assert "package manager" in Host("unknown", "?", root=True).install("runc")
    sysctl = Host("debian", "Debian", root=False).sysctl("user.max_user_namespaces", 15000)
    assert sysctl.startswith("sudo sysctl -w user.max_user_namespaces=15000")
    assert "/etc/sysctl.d/" in sysctl


def test_blockers_are_explained_with_their_fixes() -> None:
    checks = [
        Check("python", "ok", "Python 3.11.7"),
        Check("busybox", "warn", "not installed", "apt install busybox-static"),
        Check(
            "privileges",
            "fail",
            "running as uid 1000, and user namespaces are not usable",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        ),
    ]
    assert not doctor.can_run_containers(checks)
    text = doctor.explain_blockers(checks)
    assert "cannot run containers" in text
    assert "Privileges: running as uid 1000" in text
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in text
    assert "busybox" not in text  # warnings do not block
    assert "\n" not in text  # one paragraph
    assert doctor.can_run_containers(checks[:2])
    assert "busybox" in doctor.explain_blockers(checks[:2])


def test_check_lines_and_status_validation() -> None:
    assert Check("tmux", "ok", "/usr/bin/tmux", "x").line() == "✓ tmux: /usr/bin/tmux"
    warn = Check("tmux", "warn", "not installed", "apt install tmux").line()
    assert warn == "! tmux: not installed\n    fix: apt install tmux"
    with pytest.raises(ValueError):
        Check("tmux", "bad", "detail")


# ----------------------------------------------------------------------------------------------
# Decisions of the checks, from given probe results
# ----------------------------------------------------------------------------------------------


def _context(probes: dict[str, object], mountinfo: str = "") -> doctor.Context:
    return doctor.Context(
        host=Host("debian", "Debian GNU/Linux 12", root=False),
        probes=probes,
        mountinfo=mountinfo or Path("/proc/self/mountinfo").read_text(),
        config={},
    )


_OVERLAY_OK = {
    "mount": {"ok": True, "whiteout": "char 0/0"},
    "userxattr": {"ok": True, "verified": True},
    "lowerdir+": {"ok": True},
}


def test_overlay_without_lowerdir_plus_warns_with_the_kernel_to_get() -> None:
    refused = {"ok": False, "errno": 22, "error": "e overlay: Unknown parameter 'lowerdir+'"}
    check = doctor.check_overlay(_context({"overlay": {**_OVERLAY_OK, "lowerdir+": refused}}))
    assert check.status == "warn"
    assert "lowerdir+ is refused" in check.detail
    assert "Linux 6.8" in check.fix
    assert doctor.check_overlay(_context({"overlay": _OVERLAY_OK})).status == "ok"


def test_overlay_data_root_on_overlayfs_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "kit"))
    fake = (
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"90 27 0:50 / {tmp_path} rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
    )
    check = doctor.check_overlay(_context({"overlay": _OVERLAY_OK}, fake))
    assert check.status == "warn"
    assert check.data["data_root_fs"] == "overlay"
    assert "--root" in check.fix


def test_unprivileged_user_without_user_namespaces_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    probes = {
        "userns_self": {
            "uid": 1000,
            "gid": 1000,
            "unshare": {"ok": False, "errno": 1, "error": "unshare(CLONE_NEWUSER): EPERM"},
        }
    }
    ctx = _context(probes)
    privileges = doctor.check_privileges(ctx)
    assert privileges.status == "fail"
    assert "uid 1000" in privileges.detail and "EPERM" in privileges.detail
    assert privileges.fix
    userns = doctor.check_user_namespaces(ctx)
    assert userns.status == "warn"  # the failure is carried once, by `privileges`
    checks = [privileges, userns]
    assert not doctor.can_run_containers(checks)
    assert "Privileges: running as uid 1000" in doctor.explain_blockers(checks)
