"""Capabilities: names and Docker's --cap-add/--cap-drop rules, then the five sets a program in
the container really has (read from /proc/self/status by that program), including the
execve rules that decide them: root without no_new_privs gets its bounding set, root with
no_new_privs keeps only what was permitted, a non-root user only its ambient set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import kit_command

from kit.errors import KitError
from kit.linux.caps import CAP_NAMES, CAP_NUMBERS
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.security import capabilities as caps
from kit.security import probe_report
from kit.spec import Capabilities

DOCKER_14 = sorted(caps.DEFAULT_CAPABILITIES, key=CAP_NUMBERS.__getitem__)


def test_capability_numbers_match_the_kernel_header() -> None:
    header = Path("/usr/include/linux/capability.h").read_text()
    defined = {
        name: int(number)
        for name, number in re.findall(r"^#define (CAP_[A-Z_]+)\s+(\d+)\s*$", header, re.M)
    }
    last_name = re.search(r"^#define CAP_LAST_CAP\s+(CAP_\w+)", header, re.M).group(1)
    last = defined[last_name]
    assert {n: CAP_NUMBERS[n] for n in defined} == defined
    assert len(CAP_NAMES) == last + 1


@pytest.mark.parametrize("text", ["net_admin", "NET_ADMIN", "cap_net_admin", " CAP_NET_ADMIN "])
def test_names_with_or_without_the_prefix(text: str) -> None:
    assert caps.normalize(text) == "CAP_NET_ADMIN"
    assert caps.normalize("all") == "ALL"


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(KitError) as caught:
        caps.normalize("NET_ADMINN", option="--cap-add capability")
    message = str(caught.value)
    assert "unknown --cap-add capability 'NET_ADMINN'" in message
    assert "NET_ADMIN, NET_RAW" in message and "CHECKPOINT_RESTORE" in message
    assert caught.value.exit_code == 2


def test_dockers_rules_for_add_and_drop() -> None:
    assert caps.resolve([], []) == list(caps.DEFAULT_CAPABILITIES)
    assert "CAP_MKNOD" not in caps.resolve([], ["mknod"])
    assert caps.resolve(["NET_ADMIN"], [])[-1] == "CAP_NET_ADMIN"
    assert caps.resolve(["NET_BIND_SERVICE"], ["ALL"]) == ["CAP_NET_BIND_SERVICE"]
    assert caps.resolve([], ["ALL"]) == []
    everything = caps.resolve(["ALL"], ["SYS_ADMIN"], everything=["CAP_CHOWN", "CAP_SYS_ADMIN"])
    assert everything == ["CAP_CHOWN"]
    assert len(caps.resolve(["ALL"], [])) == len(CAP_NAMES)


@pytest.mark.parametrize(("add", "drop"), [(["CHOWN"], ["cap_chown"]), (["ALL"], ["ALL"])])
def test_adding_and_dropping_the_same_is_refused(add: list[str], drop: list[str]) -> None:
    with pytest.raises(KitError, match="--cap-add and --cap-drop both name"):
        caps.resolve(add, drop)


def test_capabilities_kit_does_not_hold_are_refused() -> None:
    caps.check_available(["CAP_CHOWN"], ["CAP_CHOWN", "CAP_KILL"])
    with pytest.raises(KitError, match="cannot give the container CAP_SYS_RESOURCE") as caught:
        caps.check_available(["CAP_CHOWN", "CAP_SYS_RESOURCE"], ["CAP_CHOWN"])
    assert "CapBnd" in str(caught.value)


def test_available_is_this_process_bounding_set() -> None:
    status = Path("/proc/self/status").read_text()
    mask = int(re.search(r"CapBnd:\s*([0-9a-f]+)", status).group(1), 16)
    assert caps.available() == [n for i, n in enumerate(CAP_NAMES) if mask >> i & 1]


# --- what the container's program has ----------------------------------------------------------


def report(rootfs: Path, *options: str) -> probe_report.ProbeReport:
    result = kit_command(
        "run", "--rm", *options, "--rootfs", str(rootfs), "/bin/sh", "-c", probe_report.SCRIPT
    )
    assert result.returncode == 0, result.stderr
    return probe_report.parse(result.stdout)


@pytest.mark.usefixtures("kit_root")
def test_root_keeps_dockers_14_and_nothing_inheritable(busybox_rootfs: Path) -> None:
    sets = report(busybox_rootfs).capabilities
    for name in ("effective", "permitted", "bounding"):
        assert sets[name] == DOCKER_14
    assert sets["inheritable"] == [] and sets["ambient"] == []


@pytest.mark.usefixtures("kit_root")
def test_drop_all_then_add_one(busybox_rootfs: Path) -> None:
    sets = report(busybox_rootfs, "--cap-drop", "ALL", "--cap-add", "net_bind_service").capabilities
    for name in ("effective", "permitted", "bounding"):
        assert sets[name] == ["CAP_NET_BIND_SERVICE"]
    nothing = report(busybox_rootfs, "--cap-drop", "ALL").capabilities
    assert all(nothing[name] == [] for name in nothing)


@pytest.mark.usefixtures("kit_root")
def test_added_capability_appears_in_every_set_but_inheritable(busybox_rootfs: Path) -> None:
    sets = report(busybox_rootfs, "--cap-add", "SYS_ADMIN,SYS_PTRACE").capabilities
    assert "CAP_SYS_ADMIN" in sets["effective"] and "CAP_SYS_PTRACE" in sets["bounding"]
    assert len(sets["permitted"]) == 16


@pytest.mark.usefixtures("kit_root")
def test_a_non_root_user_has_none_after_execve_but_the_same_ceiling(busybox_rootfs: Path) -> None:
    facts = report(busybox_rootfs, "-u", "1000")
    assert facts.uid == 1000
    assert facts.capabilities["effective"] == [] and facts.capabilities["permitted"] == []
    assert facts.capabilities["bounding"] == DOCKER_14


def _spec_report(rootfs: Path, capabilities: Capabilities, *, uid: int = 0, nnp: bool = True):
    spec = default_spec(["/bin/sh"], str(rootfs), hostname="caps")
    spec.process.capabilities = capabilities
    spec.process.no_new_privileges = nnp
    spec.process.user.uid = spec.process.user.gid = uid
    return probe_report.run_kit(spec)


def test_ambient_capabilities_survive_execve_for_a_non_root_user(busybox_rootfs: Path) -> None:
    bind = ["CAP_NET_BIND_SERVICE"]
    facts = _spec_report(
        busybox_rootfs,
        Capabilities(bounding=bind, effective=bind, permitted=bind, inheritable=bind, ambient=bind),
        uid=1000,
    )
    assert facts.capabilities["ambient"] == bind
    assert facts.capabilities["effective"] == bind and facts.capabilities["permitted"] == bind


def test_execve_gives_root_its_bounding_set_unless_no_new_privs(busybox_rootfs: Path) -> None:
    wanted = Capabilities(
        bounding=DOCKER_14, effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"], inheritable=[]
    )
    with_nnp = _spec_report(busybox_rootfs, wanted, nnp=True).capabilities
    without = _spec_report(busybox_rootfs, wanted, nnp=False).capabilities
    # With no_new_privs, execve may not add to what was permitted before it.
    assert with_nnp["permitted"] == ["CAP_CHOWN"]
    # Without it, root's program gets everything in the bounding set back.
    assert without["permitted"] == DOCKER_14


def test_a_spec_naming_an_unknown_capability_fails_setup(busybox_rootfs: Path) -> None:
    spec = default_spec(["/bin/true"], str(busybox_rootfs))
    spec.process.capabilities = Capabilities(bounding=["CAP_FLY"])
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.code == 125
    assert status.error is not None
    assert "process.capabilities.bounding: unknown capability 'CAP_FLY'" in str(status.error)


@pytest.mark.usefixtures("kit_root")
def test_cli_refuses_unknown_and_conflicting_names(busybox_rootfs: Path, kit_root: Path) -> None:
    unknown = kit_command(
        "run", "--rm", "--cap-add", "FLY", "--rootfs", str(busybox_rootfs), "true"
    )
    assert unknown.returncode == 2 and "unknown --cap-add capability 'FLY'" in unknown.stderr
    both = kit_command(
        "run",
        "--rm",
        "-v",
        "kept-data:/data",
        "--cap-add",
        "KILL",
        "--cap-drop",
        "kill",
        "--rootfs",
        str(busybox_rootfs),
        "true",
    )
    assert both.returncode == 2 and "both name CAP_KILL" in both.stderr
    # Refused before anything was made: no container directory, no volume.
    containers = kit_root / "run" / "containers"
    assert not [p for p in containers.glob("*") if p.is_dir()]
    assert not (kit_root / "volumes" / "kept-data").exists()
