"""Device policy: root in a container can create a node for a host disk, but not open it.

Container root keeps CAP_MKNOD (Docker's default 14), so the device cgroup is the only thing
between it and the host's disks. These tests show the kernel enforcing kit's policy:

* on this machine's cgroup v1 devices controller, through ``kit run`` and OCI bundles: a node
  for the host's root disk can be made (``b *:* m``) but opening it fails with EPERM, while
  /dev/null works; the same open succeeds once the bundle allows every device (the control);
  ``--device`` and ``--device-cgroup-rule`` open exactly what they name.
* the cgroup v2 mechanism, an eBPF program attached to a cgroup: this machine mounts the
  unified tree beside v1 (without controllers, which the program does not need), so a test
  process is placed in a cgroup there with kit's program attached, and its open(2)/mknod(2)
  calls are refused or allowed as the policy says; the same calls outside the cgroup are
  the control. The generated program is also checked instruction by instruction (golden
  disassembly), and the kernel's verifier log is shown when it refuses a program.

Harmless by construction: a "control" open is read-only and reads nothing, and the node
opened is the root disk only if this machine lets root open it at all. This machine's sandbox
refuses every open of its root disk (even to host root, outside any container), so there the
controls use a loop device (block 7:0), which nothing on this machine reads or writes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import check_golden, kit_command
from unprivileged import Unprivileged, unprivileged_area

from kit.cgroups import layout
from kit.cgroups.device_rules import (
    DENY_ALL,
    STANDARD_RULES,
    DevicePolicy,
    Entry,
    fold,
    parse_rule,
    policy_for,
    rules_for,
)
from kit.cgroups.devices import v1_lines
from kit.cgroups.manager import open_cgroup
from kit.cgroups.v2 import V2Cgroup
from kit.errors import KitError
from kit.linux import bpf
from kit.paths import root_tag
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.security import ebpf, userns
from kit.security.device_filter import compile_policy, disassemble
from kit.spec import DeviceRule

pytestmark = pytest.mark.usefixtures("kit_root")

HOST = layout.read()
# --- which block devices the tests use ----------------------------------------------------------


def root_disk() -> tuple[int, int]:
    """major, minor of the block device mounted at / (the last "/" line of mountinfo)."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                found = tuple(int(n) for n in fields[2].split(":"))
    assert found is not None
    major, minor = found
    if not os.path.exists(f"/sys/dev/block/{major}:{minor}"):
        pytest.skip(f"/ is not on a block device here ({major}:{minor})")
    return major, minor


def host_opens(directory: Path, major: int, minor: int) -> bool:
    """Whether host root, outside any container, may open the block device read-only (the
    node is made in ``directory``, opened, closed at once: nothing is read)."""
    node = directory / f"host-probe-{major}-{minor}"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    try:
        os.close(os.open(node, os.O_RDONLY))
        return True
    except OSError:
        return False
    finally:
        node.unlink()


@pytest.fixture
def control_disk(tmp_path: Path) -> tuple[int, int]:
    """A block device this machine's root may open: the root disk, else loop0 (7:0)."""
    for major, minor in (root_disk(), (7, 0)):
        if host_opens(tmp_path, major, minor):
            return major, minor
    pytest.skip("host root can open neither the root disk nor loop0 here")


def run(rootfs: Path, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), "sh", "-c", script)


def open_script(kind: str, major: int, minor: int, node: str = "/dev/kit-disk") -> str:
    """mknod a node in the container's /dev (a tmpfs without nodev), then open it read-only
    and read nothing; print what happened."""
    return (
        f"mknod {node} {kind} {major} {minor} && echo made; "
        f"(: < {node}) 2>&1 && echo opened; "
        "echo x > /dev/null && echo null-ok"
    )


# --- through kit run and bundles (the v1 devices controller here) -------------------------------


def test_root_disk_node_is_made_but_not_opened(
    busybox_rootfs: Path, kit_root: Path, control_disk: tuple[int, int]
) -> None:
    """mknod of the host's root disk works (CAP_MKNOD, "b *:* m"); opening it fails with
    EPERM, and so does opening the control disk (the root disk itself where host root may
    open it; here a loop device, see the module docstring), which host root opens outside."""
    major, minor = root_disk()
    script = open_script("b", major, minor) + "; " + open_script("b", *control_disk, "/dev/other")
    result = run(busybox_rootfs, script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "made",
        "sh: can't open /dev/kit-disk: Operation not permitted",
        "null-ok",
        "made",
        "sh: can't open /dev/other: Operation not permitted",
        "null-ok",
    ]
    tag = root_tag(kit_root)
    for hierarchy in (HOST.v1.get("devices"), HOST.v2):
        if hierarchy and os.path.isdir(f"{hierarchy}/kit"):
            assert not [p for p in os.listdir(f"{hierarchy}/kit") if tag in p]  # removed


@pytest.mark.parametrize("allowed", [False, True], ids=["guarded", "control"])
def test_a_bundle_that_allows_every_device_opens_the_disk(
    busybox_rootfs: Path, tmp_path: Path, control_disk: tuple[int, int], allowed: bool
) -> None:
    """``kit spec``'s bundle (deny every device) refuses the open; the same bundle with an
    allow-all rule, as podman --privileged writes it, opens the disk (read-only, nothing read)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert kit_command("spec", "--bundle", str(bundle)).returncode == 0
    config = json.loads((bundle / "config.json").read_text())
    assert config["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    config["root"] = {"path": str(busybox_rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", open_script("b", *control_disk)]
    if allowed:
        config["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    (bundle / "config.json").write_text(json.dumps(config))
    result = kit_command("run", "--bundle", str(bundle), "disk-" + str(allowed).lower())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "made" and lines[-1] == "null-ok"
    if allowed:
        assert lines[1] == "opened"
    else:
        assert lines[1] == "sh: can't open /dev/kit-disk: Operation not permitted"


def test_the_container_cgroup_holds_the_policy(busybox_rootfs: Path, kit_root: Path) -> None:
    """Read from the host while the container waits after its cgroups stage: v1's
    devices.list, or on a v2 host the program attached to the container's cgroup."""
    spec = default_spec(["true"], str(busybox_rootfs))
    with ContainerProcess(spec, pause_after=["cgroups"]) as container:
        assert container.next_pause() is not None
        path = f"/kit/{root_tag(kit_root)}-{container.container_id}"
        if "devices" in HOST.v1:
            listed = Path(HOST.v1["devices"] + path, "devices.list").read_text().splitlines()
            assert sorted(listed) == sorted(e.line() for e in policy_for(spec).entries)
            assert "a *:* rwm" not in listed
        else:
            fd = os.open(str(HOST.v2) + path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                assert len(bpf.prog_query(fd)) == 1
            finally:
                os.close(fd)
        container.resume()
        assert container.wait().code == 0


def test_a_user_namespace_container_joins_through_its_parents_files(
    busybox_rootfs: Path, kit_root: Path
) -> None:
    """Root inside a user namespace is not root of the host and could not open the cgroup's
    files; it joins through the ones its init parent (host root) opened, which the kernel
    judges by the opener's credentials."""
    spec = default_spec(["true"], str(busybox_rootfs))
    userns.enable(spec)
    with ContainerProcess(spec, pause_after=["cgroups"]) as container:
        pause = container.next_pause()
        assert pause is not None and pause.stage == "cgroups"
        path = f"/kit/{root_tag(kit_root)}-{container.container_id}"
        with open(f"/proc/{pause.host_pid}/cgroup") as f:
            lines = f.read().splitlines()
        controller = "devices" if "devices" in HOST.v1 else ""
        assert f":{controller}:{path}" in [line[line.index(":") :] for line in lines]
        container.resume()
        assert container.wait().code == 0


def test_device_gives_the_container_a_host_device(busybox_rootfs: Path) -> None:
    script = "ls -ln /dev/myzero; head -c 4 /dev/myzero | od -An -tx1; echo z > /dev/myzero"
    result = run(busybox_rootfs, script, "--device", "/dev/zero:/dev/myzero")
    assert result.returncode == 0, result.stderr
    listing, zeros = result.stdout.splitlines()[:2]
    assert listing.startswith("crw-rw-rw-") and "1,   5" in listing
    assert zeros.split() == ["00", "00", "00", "00"]


@pytest.mark.skipif(not os.path.exists("/dev/loop-control"), reason="no /dev/loop-control")
@pytest.mark.parametrize(
    "options",
    [(), ("--device", "/dev/loop-control:/dev/lc:r"), ("--device-cgroup-rule", "c 10:237 r")],
    ids=["default", "device-read-only", "cgroup-rule"],
)
def test_device_rules_allow_exactly_what_they_name(
    busybox_rootfs: Path, options: tuple[str, ...]
) -> None:
    """/dev/loop-control (c 10:237) is not a standard device: refused by default; allowed
    for reading (only) by --device ...:r or by a rule. Opening it does nothing by itself
    (loop devices are made by an ioctl, which this never sends)."""
    script = (
        "[ -e /dev/lc ] || mknod /dev/lc c 10 237; "
        "(: < /dev/lc) 2>&1 && echo read-ok; (: > /dev/lc) 2>&1 && echo write-ok; true"
    )
    result = run(busybox_rootfs, script, *options)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    denied_read = "sh: can't open /dev/lc: Operation not permitted"
    denied_write = "sh: can't create /dev/lc: Operation not permitted"
    if not options:
        assert lines == [denied_read, denied_write]
    else:
        assert lines == ["read-ok", denied_write]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--device", "/dev/kit-no-such-device"), "cannot read the host's"),
        (("--device", "/etc/hostname"), "is not a device node"),
        (("--device", "/dev/zero:relative"), "invalid --device"),
        (("--device", "/dev/zero:/dev/z:rwx"), "invalid --device"),
        (("--device-cgroup-rule", "x 1:3 rwm"), "invalid --device-cgroup-rule"),
        (("--device-cgroup-rule", "c 1:3 rwq"), "invalid --device-cgroup-rule"),
        (("--userns", "--device", "/dev/zero:/dev/z"), "keeps its host path"),
    ],
)
def test_bad_device_options(busybox_rootfs: Path, options: tuple[str, ...], message: str) -> None:
    result = run(busybox_rootfs, "true", *options)
    assert result.returncode == 2
    assert message in result.stderr and "Fix:" in result.stderr


# --- rootless: no devices cgroup, and none needed -----------------------------------------------


@pytest.fixture(scope="module")
def nobody() -> Iterator[Unprivileged]:
    with unprivileged_area() as area:
        yield area


def test_rootless_has_no_device_cgroup_and_cannot_mknod(nobody: Unprivileged) -> None:
    result = nobody.kit(
        "run", "--rm", "--events", "json", "--rootfs", str(nobody.rootfs),
        "sh", "-c", "mknod /dev/zero2 c 1 5 2>&1 || echo refused",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "refused"
    assert "Operation not permitted" in result.stdout  # the kernel's refusal in a userns
    infos = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    messages = [e.get("message") or "" for e in infos]
    assert any(m.startswith("rootless: no devices cgroup") for m in messages)


# --- cgroup v2: the BPF program, for real on the unified tree -----------------------------------

#: The child: joins the cgroup as a container process does (writes 0 into the membership
#: file its parent opened, if any), then runs each operation and prints the outcomes: "ok"
#: or the errno name.
CHILD = r"""
import errno, json, os, stat, sys
operations = json.loads(sys.argv[1])
join_fd = int(sys.argv[2])
if join_fd >= 0:
    os.write(join_fd, b"0")
out = []
for op, path, *rest in operations:
    try:
        if op == "mknod":
            kind, major, minor = rest
            mode = (stat.S_IFBLK if kind == "b" else stat.S_IFCHR) | 0o600
            os.mknod(path, mode, os.makedev(major, minor))
        else:
            os.close(os.open(path, os.O_RDWR if op == "open-rw" else os.O_RDONLY))
        out.append("ok")
    except OSError as error:
        out.append(errno.errorcode[error.errno])
print(json.dumps(out))
"""


def run_child(operations: list[list[Any]], cgroup: V2Cgroup | None) -> list[str]:
    """Run the operations in a fresh process, inside ``cgroup`` (None: where we are)."""
    join_fd = -1
    if cgroup is not None:
        cgroup.open_join_files()
        join_fd = cgroup.directory.join_fd
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(operations), str(join_fd)],
            pass_fds=(join_fd,) if join_fd >= 0 else (),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        if cgroup is not None:
            cgroup.close_join_files()
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def unified() -> layout.Layout:
    """The unified tree alone, as a pure cgroup v2 host would have it."""
    if not HOST.v2:
        pytest.skip("the unified cgroup tree is not mounted here")
    return layout.Layout(v2=HOST.v2, v2_controllers=HOST.v2_controllers)


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    """A directory for device nodes (its filesystem must not be mounted nodev)."""
    assert not os.statvfs(tmp_path).f_flag & os.ST_NODEV, "tmp_path is on a nodev mount"
    return tmp_path


def v2_cgroup(unified: layout.Layout, name: str, policy: DevicePolicy) -> V2Cgroup:
    cgroup = V2Cgroup.for_layout(unified, f"/kit/{root_tag()}-{name}", ())
    cgroup.devices = cgroup.directory
    cgroup.create()
    try:
        cgroup.restrict_devices(policy)
    except BaseException:
        cgroup.remove()
        raise
    return cgroup


def test_v2_program_refuses_what_the_policy_does_not_allow(
    unified: layout.Layout, nodes: Path
) -> None:
    """Only /dev/null allowed, no mknod wildcard: mknod and open of /dev/zero's numbers are
    refused inside the cgroup, and work outside it (the control)."""
    policy = fold([DENY_ALL, DeviceRule(True, "c", 1, 3, "rwm")])
    made_zero, made_null = nodes / "zero", nodes / "null"
    os.mknod(made_zero, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    os.mknod(made_null, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    operations: list[list[Any]] = [
        ["open-rw", str(made_null)],
        ["open", str(made_zero)],
        ["mknod", str(nodes / "null2"), "c", 1, 3],
        ["mknod", str(nodes / "zero2"), "c", 1, 5],
    ]
    cgroup = v2_cgroup(unified, "v2-null-only", policy)
    try:
        assert len(bpf.prog_query(cgroup.directory.fd)) == 1
        inside = run_child(operations, cgroup)
    finally:
        cgroup.remove()
    assert inside == ["ok", "EPERM", "ok", "EPERM"]
    (nodes / "null2").unlink()
    assert run_child(operations, None) == ["ok", "ok", "ok", "ok"]


def test_v2_default_policy_like_a_container(
    unified: layout.Layout, nodes: Path, control_disk: tuple[int, int]
) -> None:
    """The policy every kit container gets, through the manager as on a pure v2 host: any
    node may be made, a disk may not be opened, /dev/null may."""
    spec = default_spec(["true"], "/")
    cgroup = open_cgroup(spec, "v2-default", layout=unified)
    assert isinstance(cgroup, V2Cgroup) and cgroup.devices is cgroup.directory
    disk = str(nodes / "disk")
    operations: list[list[Any]] = [
        ["mknod", disk, "b", *control_disk],
        ["open", disk],
        ["open-rw", "/dev/null"],
    ]
    try:
        inside = run_child(operations, cgroup)
    finally:
        cgroup.remove()
    assert inside == ["ok", "EPERM", "ok"]
    os.unlink(disk)
    assert run_child(operations, None) == ["ok", "ok", "ok"]  # the control: no program


def test_v2_allow_by_default_with_exceptions(unified: layout.Layout, nodes: Path) -> None:
    """A policy that allows everything but /dev/zero's numbers (default 1, one deny block)."""
    policy = fold([DeviceRule(True, access="rwm"), DeviceRule(False, "c", 1, 5, "rwm")])
    assert policy == DevicePolicy(True, [Entry("c", 1, 5, "rwm")])
    zero = nodes / "zero"
    os.mknod(zero, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    cgroup = v2_cgroup(unified, "v2-allow", policy)
    try:
        inside = run_child([["open", str(zero)], ["open", "/dev/null"]], cgroup)
    finally:
        cgroup.remove()
    assert inside == ["EPERM", "ok"]


def test_the_verifier_log_explains_a_refused_program() -> None:
    """A program that exits without setting r0: the kernel refuses it, and says why."""
    broken = [ebpf.Instruction(ebpf.EXIT)]
    with pytest.raises(KitError) as caught:
        bpf.prog_load(ebpf.encode(broken), name="kit_broken")
    error = caught.value
    assert error.errno is not None and "verifier refused the kit_broken program" in error.what
    assert error.cause is not None and "R0 !read_ok" in error.cause
    assert error.fix


# --- the program and the rules (pure) -----------------------------------------------------------


def test_default_program_golden() -> None:
    policy = policy_for(default_spec(["true"], "/"))
    check_golden("device_filter_default.txt", disassemble(policy))


def test_program_shape() -> None:
    policy = fold([DENY_ALL, DeviceRule(True, "b", 8, None, "r")])
    program = compile_policy(policy)
    assert ebpf.decode(ebpf.encode(program)) == [
        ebpf.Instruction(i.code, i.dst, i.src, i.off, i.imm) for i in program
    ]
    text = [line.split("  ", 2)[2].split("#")[0].strip() for line in ebpf.disassemble(program)]
    assert text[6:] == [
        "if r2 != 1 goto 0013",  # a block device?
        "w1 = w3",
        "w1 &= 0x2",  # r only
        "if r1 != r3 goto 0013",  # asked for more than r?
        "if r4 != 8 goto 0013",  # major 8; no minor test (*)
        "w0 = 1",
        "exit",
        "w0 = 0",  # the default: deny
        "exit",
    ]


def test_rules_fold_like_the_v1_controller() -> None:
    # "a" starts over; letters merge; a rule with the default action removes letters.
    assert fold([]).describe() == ["deny a *:* rwm"]
    policy = fold(
        [
            DeviceRule(True, "c", 1, 3, "r"),  # forgotten: the next rule starts over
            DENY_ALL,
            DeviceRule(True, "c", 1, 3, "r"),
            DeviceRule(True, "c", 1, 3, "w"),
            DeviceRule(True, "b", -1, -1, "rwm"),  # -1: any, as Go runtimes write it
            DeviceRule(False, "b", None, None, "w"),
        ]
    )
    assert policy.describe() == ["deny a *:* rwm", "allow c 1:3 rw", "allow b *:* rm"]
    assert fold([DeviceRule(True, access="rwm")]).allows_everything
    assert v1_lines(policy) == [
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rw"),
        ("devices.allow", "b *:* rm"),
    ]


def test_punching_a_hole_in_a_wildcard_is_refused() -> None:
    rules = [DENY_ALL, DeviceRule(True, "c", None, None, "rwm"), DeviceRule(False, "c", 1, 3, "w")]
    with pytest.raises(KitError, match="cannot narrow the earlier wildcard 'c \\*:\\* rwm'"):
        fold(rules)


def test_bad_rules_are_explained() -> None:
    with pytest.raises(KitError, match="invalid device access 'rx'"):
        fold([DeviceRule(True, "c", 1, 3, "rx")])
    with pytest.raises(KitError, match="invalid device type 'p'"):
        fold([DeviceRule(True, "p", 1, 3, "r")])


def test_parse_rule_and_the_spec_rules() -> None:
    assert parse_rule("c 1:3 rwm") == DeviceRule(True, "c", 1, 3, "rwm")
    assert parse_rule("b 8:*  r") == DeviceRule(True, "b", 8, None, "r")
    assert parse_rule("a") == DeviceRule(True, None, None, None, "rwm")
    spec = default_spec(["true"], "/")
    assert rules_for(spec) == [DeviceRule(False, access="rwm"), *STANDARD_RULES]
    assert [e.line() for e in policy_for(spec).entries][:3] == ["c *:* m", "b *:* m", "c 1:3 rwm"]


def test_kit_spec_rootless_has_no_resources(tmp_path: Path) -> None:
    assert kit_command("spec", "--rootless", "--bundle", str(tmp_path)).returncode == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert "resources" not in config["linux"]
