"""``kit doctor`` per distribution: what blocks a lesson and the exact fix, decided from sample
os-release texts, sysctl values, mount tables and probe results of machines this CI host is
not (Ubuntu 24.04 with AppArmor's userns restriction, Debian 10, a cgroup v2 laptop, Docker,
WSL). Pure logic: the same checks as on the real machine, on a Context built from samples.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from kit import doctor
from kit.doctor import Context, Host, requirements
from kit.doctor.checks.cgroups import check_cgroups
from kit.doctor.checks.environment import check_environment
from kit.doctor.checks.identity import check_privileges, check_user_namespaces
from kit.doctor.checks.kernel import check_namespaces, check_overlay
from kit.doctor.distro import CONTAINER_FIX, userns_blockers

# ----------------------------------------------------------------------------------------------
# Samples
# ----------------------------------------------------------------------------------------------

UBUNTU_2404 = """\
PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
ID=ubuntu
ID_LIKE=debian
"""
UBUNTU_2204 = UBUNTU_2404.replace("24.04.1 LTS", "22.04.4 LTS").replace('"24.04"', '"22.04"')
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'
DEBIAN_11 = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_ID="11"\nID=debian\n'
DEBIAN_10 = 'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nVERSION_ID="10"\nID=debian\n'
FEDORA_40 = 'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n'
CENTOS_7 = 'NAME="CentOS Linux"\nVERSION_ID="7"\nID="centos"\nID_LIKE="rhel fedora"\n'
ARCH = 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n'

#: A laptop with systemd and cgroup v2 only (Ubuntu 22.04+, Debian 11+, Fedora 31+).
V2_MOUNTS = """\
24 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
#: cgroup v1 controllers plus an empty v2 tree (Debian 10, Ubuntu 20.04, this CI machine).
HYBRID_MOUNTS = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
#: Docker's default: a private, read-only cgroup2 mount.
DOCKER_MOUNTS = """\
500 450 0:60 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
510 500 0:65 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw
"""

NO_SWITCHES: dict[str, int | None] = {
    "user.max_user_namespaces": 63000,
    "kernel.unprivileged_userns_clone": 1,
    "kernel.apparmor_restrict_unprivileged_userns": None,
}
UBUNTU_2404_SWITCHES = {**NO_SWITCHES, "kernel.apparmor_restrict_unprivileged_userns": 1}

_EPERM = {"ok": False, "errno": 1}
#: What Ubuntu 23.10+ does to an unconfined program: unshare succeeds, every mount fails.
RESTRICTED_USERNS = {
    "uid": 1000,
    "gid": 1000,
    "unshare": {"ok": True},
    "mount": {**_EPERM, "error": "mount(kit-doctor, /tmp, tmpfs): EPERM (Operation not permitted)"},
}
REFUSED_USERNS = {
    "uid": 1000,
    "gid": 1000,
    "unshare": {**_EPERM, "error": "unshare(CLONE_NEWUSER): EPERM (Operation not permitted)"},
}
WORKING_USERNS = {
    "uid": 1000,
    "gid": 1000,
    "unshare": {"ok": True},
    "mount": {"ok": True},
    "overlay": {"ok": True, "whiteout": "char 0/0", "verified": True},
    "overlay lowerdir+": {"ok": True},
}
ROOT_OVERLAY = {
    "mount": {"ok": True, "whiteout": "char 0/0"},
    "userxattr": {"ok": True, "verified": True},
    "lowerdir+": {"ok": True},
}
ALL_NAMESPACES = {f"ns_{kind}": {"ok": True} for kind in doctor.NAMESPACE_KINDS}


def context(
    os_release: str,
    *,
    euid: int,
    probes: dict[str, Any],
    sysctls: dict[str, int | None] = NO_SWITCHES,
    mountinfo: str = HYBRID_MOUNTS,
    controllers: str = "",
    delegated: tuple[str, ...] = (),
    hints: dict[str, str] | None = None,
    cap_sys_admin: bool | None = None,
) -> Context:
    """A machine described by samples; what the samples leave out is read from this host."""
    return Context(
        host=Host.from_os_release(os_release, root=euid == 0),
        probes={**ALL_NAMESPACES, **probes},
        mountinfo=mountinfo,
        config={},
        euid=euid,
        cap_sys_admin=euid == 0 if cap_sys_admin is None else cap_sys_admin,
        sysctls=dict(sysctls),
        cgroup_controllers=controllers,
        delegated=delegated,
        hints=hints if hints is not None else {},
    )


def facts(ctx: Context) -> requirements.Facts:
    """Every check on the sample context, as the lesson framework would ask about them."""
    return requirements.Facts(doctor.evaluate(ctx), ctx.host)


# ----------------------------------------------------------------------------------------------
# The distribution, from os-release
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "family", "ident", "version"),
    [
        (UBUNTU_2404, "debian", "ubuntu", (24, 4)),
        (UBUNTU_2204, "debian", "ubuntu", (22, 4)),
        (DEBIAN_12, "debian", "debian", (12,)),
        (FEDORA_40, "fedora", "fedora", (40,)),
        (CENTOS_7, "fedora", "centos", (7,)),
        (ARCH, "arch", "arch", ()),
    ],
)
def test_host_from_os_release(text: str, family: str, ident: str, version: tuple[int, ...]) -> None:
    host = Host.from_os_release(text, root=False)
    assert (host.family, host.id) == (family, ident)
    assert doctor.version_tuple(host.version) == version


def test_version_tuple_and_comparisons() -> None:
    assert doctor.version_tuple("24.04") == (24, 4)
    assert doctor.version_tuple("11 (bullseye)") == (11,)
    assert doctor.version_tuple("rolling") == ()
    ubuntu = Host.from_os_release(UBUNTU_2404, root=True)
    assert ubuntu.is_("ubuntu", (23, 10))
    assert not Host.from_os_release(UBUNTU_2204, root=True).is_("ubuntu", (23, 10))
    assert not ubuntu.is_("debian")


def test_python_fix_per_distribution() -> None:
    jammy = Host.from_os_release(UBUNTU_2204, root=False).python_fix()
    assert jammy.startswith("sudo apt install python3.11 python3.11-venv")
    assert "upgrade to Debian 12" in Host.from_os_release(DEBIAN_11, root=True).python_fix()
    assert Host.from_os_release(FEDORA_40, root=True).python_fix() == "dnf install python3.11"


def test_kernel_parameters_per_distribution() -> None:
    debian = Host.from_os_release(DEBIAN_12, root=False).kernel_parameter("x=1")
    assert "GRUB_CMDLINE_LINUX in /etc/default/grub" in debian and "sudo update-grub" in debian
    fedora = Host.from_os_release(FEDORA_40, root=True).kernel_parameter("x=1")
    assert fedora == "grubby --update-kernel=ALL --args=x=1, then reboot"
    arch = Host.from_os_release(ARCH, root=True).kernel_parameter("x=1")
    assert "grub-mkconfig -o /boot/grub/grub.cfg" in arch
    hwe = Host.from_os_release(UBUNTU_2204, root=False).newer_kernel("6.8")
    assert "sudo apt install linux-generic-hwe-22.04" in hwe
    assert "modules-load.d/kit-overlay.conf" in Host("debian", "D", True).load_module("overlay")
    assert Host("debian", "D", True).install("podman") == "apt install podman"
    assert Host("fedora", "F", False).install("docker-registry").endswith("docker-distribution")


# ----------------------------------------------------------------------------------------------
# User namespaces: distribution switches
# ----------------------------------------------------------------------------------------------


def test_no_switch_blocks_user_namespaces_on_debian_12() -> None:
    assert userns_blockers(NO_SWITCHES, Host.from_os_release(DEBIAN_12, root=False)) == []


def test_ubuntu_2404_apparmor_restriction_is_named_with_its_sysctl() -> None:
    host = Host.from_os_release(UBUNTU_2404, root=False)
    (blocker,) = userns_blockers(UBUNTU_2404_SWITCHES, host)
    assert "Ubuntu 24.04.1 LTS restricts them by default (Ubuntu 23.10 and later)" in blocker.reason
    assert "EPERM" in blocker.reason
    assert blocker.fix.startswith("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    assert "/etc/sysctl.d/60-kit.conf" in blocker.fix


def test_debian_10_and_centos_7_switches() -> None:
    debian = userns_blockers(
        {**NO_SWITCHES, "kernel.unprivileged_userns_clone": 0},
        Host.from_os_release(DEBIAN_10, root=True),
    )
    assert [b.fix.split(" (")[0] for b in debian] == [
        "sysctl -w kernel.unprivileged_userns_clone=1"
    ]
    centos = userns_blockers(
        {**NO_SWITCHES, "user.max_user_namespaces": 0}, Host.from_os_release(CENTOS_7, root=False)
    )
    assert centos[0].fix.startswith("sudo sysctl -w user.max_user_namespaces=15000")


def test_ubuntu_2404_student_without_sudo() -> None:
    ctx = context(
        UBUNTU_2404,
        euid=1000,
        probes={"userns_self": RESTRICTED_USERNS},
        sysctls=UBUNTU_2404_SWITCHES,
    )
    privileges = check_privileges(ctx)
    assert privileges.status == "fail"
    assert "mounting inside it: mount(kit-doctor" in privileges.detail
    assert "apparmor_restrict_unprivileged_userns is 1" in privileges.detail
    assert privileges.fix.startswith(
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    )
    known = facts(ctx)
    lesson = known.assess(["namespace:pid"])
    assert not lesson.runnable
    assert [u.key for u in lesson.unmet] == ["containers"]  # every lesson needs containers
    assert "apparmor_restrict_unprivileged_userns=0" in lesson.unmet[0].fix
    assert "Fix: sudo sysctl -w kernel.apparmor" in lesson.explain()
    root = known.outcome("root")
    assert not root.met and root.fix == "run the tutorial as root: sudo kit-tutorial"


def test_ubuntu_2404_root_mode_works_and_says_rootless_students_do_not() -> None:
    restricted = {**RESTRICTED_USERNS, "user": "student1"}
    ctx = context(
        UBUNTU_2404,
        euid=0,
        probes={
            "userns_self": WORKING_USERNS,
            "userns_unprivileged": restricted,
            "overlay": ROOT_OVERLAY,
        },
        sysctls=UBUNTU_2404_SWITCHES,
    )
    userns = check_user_namespaces(ctx)
    assert userns.status == "warn"
    assert "as student1 (uid 1000)" in userns.detail
    assert "rootless students cannot run containers (root mode, with sudo, still works)" in (
        userns.detail
    )
    assert userns.fix.startswith("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    known = facts(ctx)
    assert known.outcome("containers").met
    assert known.outcome("root").met
    assert known.outcome("userns").met
    rootless = known.outcome("userns:unprivileged")
    assert not rootless.met
    assert rootless.fix == userns.fix


# ----------------------------------------------------------------------------------------------
# cgroups: v1, v2, hybrid; root and rootless; which lessons change
# ----------------------------------------------------------------------------------------------


def test_cgroup_v2_root_lessons_write_the_v2_files() -> None:
    ctx = context(
        UBUNTU_2204,
        euid=0,
        probes={"overlay": ROOT_OVERLAY},
        mountinfo=V2_MOUNTS,
        controllers="cpuset cpu io memory pids",
    )
    check = check_cgroups(ctx)
    assert check.status == "ok"
    assert check.data["usable"] == {"memory": True, "pids": True, "cpu": True}
    known = facts(ctx)
    memory = known.outcome("cgroup:memory")
    assert memory.met
    assert "memory: memory.max (v2)" in memory.note and "cpu: cpu.max (v2)" in memory.note
    assert known.outcome("cgroup:v2").met
    notes = known.assess(["cgroup:memory", "cgroup:pids"]).notes
    assert len(notes) == 1  # the same note once, however many controllers a lesson uses


def test_cgroup_v2_rootless_needs_delegation() -> None:
    ctx = context(
        UBUNTU_2204,
        euid=1000,
        probes={"userns_self": WORKING_USERNS},
        mountinfo=V2_MOUNTS,
        controllers="cpuset cpu io memory pids",
        delegated=("memory", "pids"),
    )
    check = check_cgroups(ctx)
    assert check.status == "warn"
    assert "controllers delegated to uid 1000: memory pids" in check.detail
    assert "Delegate=cpu memory pids" in check.fix
    assert "sudo mkdir -p /etc/systemd/system/user@.service.d" in check.fix
    assert "sudo systemctl daemon-reload" in check.fix
    known = facts(ctx)
    assert known.outcome("cgroup:memory").met
    cpu = known.outcome("cgroup:cpu")
    assert not cpu.met and "Delegate=" in cpu.fix


def test_hybrid_root_lessons_write_the_v1_files_and_v2_lessons_are_blocked() -> None:
    ctx = context(DEBIAN_12, euid=0, probes={"overlay": ROOT_OVERLAY}, mountinfo=HYBRID_MOUNTS)
    check = check_cgroups(ctx)
    assert check.status == "ok"
    assert "memory: memory.limit_in_bytes (v1)" in check.detail
    assert "cpu: cpu.cfs_quota_us + cpu.cfs_period_us (v1)" in check.detail
    known = facts(ctx)
    assert "memory.limit_in_bytes (v1)" in known.outcome("cgroup:memory").note
    v2 = known.outcome("cgroup:v2")
    assert not v2.met
    assert v2.fix == (
        "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, "
        "then run update-grub and reboot"
    )


def test_cgroup_v1_rootless_on_fedora_says_switch_to_v2_with_grubby() -> None:
    ctx = context(
        FEDORA_40, euid=1000, probes={"userns_self": WORKING_USERNS}, mountinfo=HYBRID_MOUNTS
    )
    check = check_cgroups(ctx)
    assert check.status == "warn"
    assert "every v1 hierarchy belongs to root" in check.detail
    assert "sudo kit-tutorial" in check.fix
    assert "sudo grubby --update-kernel=ALL --args=systemd.unified_cgroup_hierarchy=1" in check.fix
    assert not facts(ctx).outcome("cgroup:pids").met


def test_wsl2_gets_the_wslconfig_fix() -> None:
    hints = {"wsl2": "/proc/version names a Microsoft WSL2 kernel"}
    ctx = context(UBUNTU_2204, euid=0, probes={"overlay": ROOT_OVERLAY}, hints=hints)
    environment = check_environment(ctx)
    assert environment.status == "warn" and "kernelCommandLine" in environment.fix
    v2 = facts(ctx).outcome("cgroup:v2")
    assert not v2.met and ".wslconfig" in v2.fix and "cgroup_no_v1=all" in v2.fix


def test_docker_read_only_cgroups_block_limits() -> None:
    ctx = context(
        DEBIAN_12,
        euid=0,
        probes={"overlay": ROOT_OVERLAY},
        mountinfo=DOCKER_MOUNTS,
        controllers="memory pids cpu",
    )
    check = check_cgroups(ctx)
    assert check.status == "warn" and "mounted read-only" in check.detail
    assert not facts(ctx).outcome("cgroup:memory").met


# ----------------------------------------------------------------------------------------------
# Containers and WSL
# ----------------------------------------------------------------------------------------------

DOCKER_STATUS = "Name:\tpython3\nUid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n"


def test_container_hints_from_capabilities_and_seccomp() -> None:
    hints = doctor.container_hints(
        dockerenv=True,
        containerenv=False,
        pid1_cgroup="0::/\n",
        pid1_environ="",
        proc_version="",
        self_status=DOCKER_STATUS,
    )
    assert set(hints) == {"dockerenv", "capabilities", "seccomp"}
    assert "CapEff 00000000a80425fb" in hints["capabilities"]
    full = DOCKER_STATUS.replace("00000000a80425fb", "000001ffffffffff").replace("\t2", "\t0")
    quiet = doctor.container_hints(
        dockerenv=False,
        containerenv=False,
        pid1_cgroup="",
        pid1_environ="",
        proc_version="",
        self_status=full,
    )
    assert quiet == {}


def test_inside_docker_every_blocker_points_to_the_privileged_fix() -> None:
    hints = doctor.container_hints(
        dockerenv=True,
        containerenv=False,
        pid1_cgroup="0::/system.slice/docker-4f1e.scope\n",
        pid1_environ="container=docker\0",
        proc_version="",
        self_status=DOCKER_STATUS,
    )
    denied = {
        f"ns_{kind}": {**_EPERM, "error": f"unshare: EPERM ({kind})"}
        for kind in doctor.NAMESPACE_KINDS
    }
    probes = {
        **denied,
        "userns_self": {**REFUSED_USERNS, "uid": 0, "gid": 0},
        "overlay": {**_EPERM, "error": "unshare(CLONE_NEWNS): EPERM (Operation not permitted)"},
    }
    ctx = context(
        DEBIAN_12,
        euid=0,
        probes=probes,
        mountinfo=DOCKER_MOUNTS,
        hints=hints,
        cap_sys_admin=False,
    )
    ctx.probes.update(denied)
    privileges = check_privileges(ctx)
    assert privileges.status == "fail" and privileges.fix == CONTAINER_FIX
    assert "root without CAP_SYS_ADMIN" in privileges.detail
    namespaces = check_namespaces(ctx)
    assert namespaces.status == "fail"
    assert "refused although the kernel has them" in namespaces.detail
    assert namespaces.fix == CONTAINER_FIX  # not "a newer kernel": the kernel has them
    assert check_environment(ctx).data["kind"] == "container"
    overlay = check_overlay(ctx)
    assert overlay.status == "warn" and overlay.fix.startswith(CONTAINER_FIX)
    assert "kit --root /some/volume" in overlay.fix  # Docker's / is an overlay itself
    assert "unshare(CLONE_NEWNS): EPERM" in overlay.detail


def test_wsl1_cannot_run_containers() -> None:
    hints = {"wsl1": "/proc/version names Microsoft (WSL1: no real Linux kernel)"}
    ctx = context(UBUNTU_2204, euid=0, probes={"overlay": ROOT_OVERLAY}, hints=hints)
    environment = check_environment(ctx)
    assert environment.status == "fail"
    containers = facts(ctx).outcome("containers")
    assert not containers.met and "wsl --set-version" in containers.fix


# ----------------------------------------------------------------------------------------------
# overlayfs: missing support blocks image lessons, not containers
# ----------------------------------------------------------------------------------------------


def test_failed_overlay_blocks_image_lessons_only() -> None:
    refused = {**ROOT_OVERLAY, "mount": {"ok": False, "errno": 19, "error": "mount: ENODEV"}}
    ctx = context(DEBIAN_12, euid=0, probes={"overlay": refused})
    check = check_overlay(ctx)
    assert check.status == "warn"
    assert "image and layer lessons" in check.detail
    assert check.fix.startswith("modprobe overlay")
    known = facts(ctx)
    assert known.outcome("containers").met
    assert not known.outcome("overlay").met
    assert known.assess(["namespace:mount"]).runnable


def test_rootless_overlay_on_an_old_kernel() -> None:
    refused = {"ok": False, "errno": 1, "error": "mount(overlay): EPERM (Operation not permitted)"}
    ctx = context(
        DEBIAN_12, euid=1000, probes={"userns_self": {**WORKING_USERNS, "overlay": refused}}
    )
    check = check_overlay(ctx)
    assert check.status == "warn"
    assert "tried in a user namespace" in check.detail
    assert "sudo kit-tutorial" in check.fix and "5.11" in check.fix


def test_sample_contexts_do_not_depend_on_this_machine_for_what_they_give() -> None:
    """The samples above are really what the checks decide from (not the CI host's state)."""
    ctx = context(UBUNTU_2404, euid=0, probes={}, sysctls=UBUNTU_2404_SWITCHES)
    assert ctx.userns_sysctls() == UBUNTU_2404_SWITCHES
    assert ctx.cgroup_layout().mode == "hybrid"
    assert ctx.environment_hints() == {}
    assert os.geteuid() == 0  # the CI host is root; the uid-1000 samples are not
