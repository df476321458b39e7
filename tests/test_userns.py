"""User namespaces on the real kernel: root inside is not root outside.

Rootless tests run kit as uid 65534 (see tests/unprivileged.py). The subordinate-range test
gives that user ranges in /etc/subuid and /etc/subgid *inside a private mount namespace*
(bind mounts over the two files, gone with the namespace), so the real setuid newuidmap
reads them without the host's files being touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import kit_command
from unprivileged import NOBODY, Unprivileged, unprivileged_area, with_subordinate_ids

from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.security import userns
from kit.spec import IdMapping, Mount, OverlaySpec

pytestmark = pytest.mark.usefixtures("kit_root")


@pytest.fixture(scope="module")
def nobody() -> Iterator[Unprivileged]:
    with unprivileged_area() as area:
        yield area


def run_root(rootfs: Path, *command: str, options: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command)


def host_ids(pid: int) -> tuple[int, int]:
    """The effective uid and gid of a process, as the host sees them."""
    uid = gid = -1
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[2])
            elif line.startswith("Gid:"):
                gid = int(line.split()[2])
    return uid, gid


# --- mapping logic -------------------------------------------------------------------------------


def test_default_mappings_for_an_ordinary_user() -> None:
    who = userns.Invoker(1000, 1000, "ann")
    uids, gids = userns.default_mappings(who, subuid_text="", subgid_text="", helpers=True)
    assert uids == [IdMapping(0, 1000, 1)] and gids == [IdMapping(0, 1000, 1)]
    uids, gids = userns.default_mappings(
        who,
        subuid_text="bob:300000:65536\nann:100000:65536\n",
        subgid_text="1000:200000:1000\n",
        helpers=True,
    )
    assert uids == [IdMapping(0, 1000, 1), IdMapping(1, 100000, 65536)]
    assert gids == [IdMapping(0, 1000, 1), IdMapping(1, 200000, 1000)]
    # Ranges are useless without the setuid helpers that may write them.
    uids, _ = userns.default_mappings(
        who, subuid_text="ann:100000:65536\n", subgid_text="ann:100000:65536\n", helpers=False
    )
    assert uids == [IdMapping(0, 1000, 1)]


def test_default_mappings_for_root() -> None:
    root = userns.Invoker(0, 0, "root")
    uids, gids = userns.default_mappings(root, subuid_text="", subgid_text="", helpers=True)
    assert uids == [IdMapping(0, userns.NOBODY, 1)] == gids
    uids, gids = userns.default_mappings(
        root, subuid_text="root:100000:65536\n", subgid_text="root:100000:65536\n"
    )
    assert uids == [IdMapping(0, 100000, 65536)] == gids


def test_enable_adapts_devpts_and_sysfs(busybox_rootfs: Path) -> None:
    spec = default_spec(["true"], str(busybox_rootfs), namespaces=("pid", "mount", "uts"))
    userns.enable(spec, userns.Invoker(1000, 1000, "ann"))
    assert spec.linux.namespaces[0].type == "user"
    devpts = next(m for m in spec.mounts if m.destination == "/dev/pts")
    assert not any(o.startswith("gid=") for o in devpts.options)  # gid 5 is not mapped
    sysfs = next(m for m in spec.mounts if m.destination == "/sys")
    assert sysfs.type == "bind" and sysfs.source == "/sys"  # no network namespace of its own


def test_overlapping_maps_are_refused() -> None:
    spec = default_spec(["true"], "/")
    spec.linux.uid_mappings = [IdMapping(0, 1000, 10), IdMapping(5, 2000, 10)]
    spec.linux.gid_mappings = [IdMapping(0, 1000, 1)]
    with pytest.raises(Exception, match="overlapping uid map"):
        userns.check_mappings(spec)


# --- root asks for a user namespace --------------------------------------------------------------


def test_root_inside_is_nobody_outside(nobody: Unprivileged) -> None:
    # Root's container runs as nobody outside: its rootfs must be reachable by nobody, so it
    # lives in the world-searchable area (pytest's temporary directories are root-only).
    spec = default_spec(
        ["sh", "-c", "id -u; cat /proc/self/uid_map; hostname"], str(nobody.rootfs), hostname="uns"
    )
    userns.enable(spec)
    with ContainerProcess(spec, capture=True, pause_after=["identity"]) as container:
        pause = container.next_pause()
        assert pause is not None
        # The kernel's view from outside: the container's root is uid 65534 here.
        assert host_ids(pause.host_pid) == (NOBODY, NOBODY)
        with open(f"/proc/{pause.host_pid}/uid_map") as f:
            assert f.read().split() == ["0", str(NOBODY), "1"]
        assert pause.namespaces["user"] != pause.host_namespaces["user"]
        container.resume()
        status = container.wait()
    assert status.code == 0, status.error
    lines = status.stdout.decode().split("\n")
    assert lines[0] == "0"  # uid 0 inside
    assert lines[1].split() == ["0", str(NOBODY), "1"]
    assert lines[2] == "uns"  # sethostname works: the UTS namespace belongs to the user ns


def host_root_owned_file(base: Path) -> Path:
    data = base / "data"
    data.mkdir(mode=0o755)
    target = data / "file"
    target.write_text("host\n")
    target.chmod(0o644)
    os.chown(data, 0, 0)
    os.chown(target, 0, 0)
    return data


@pytest.mark.parametrize("user_namespace", [True, False], ids=["userns", "control"])
def test_root_inside_cannot_write_a_host_root_owned_bind_mount(
    nobody: Unprivileged, tmp_path: Path, user_namespace: bool
) -> None:
    scratch = nobody.base / tmp_path.name
    scratch.mkdir(mode=0o755)
    data = host_root_owned_file(scratch)
    spec = default_spec(
        ["sh", "-c", "id -u; echo container >> /mnt/file && echo wrote"], str(nobody.rootfs)
    )
    # /mnt exists in the rootfs: in the user namespace, root could not create a mount point
    # in a rootfs that host root owns.
    spec.mounts.append(Mount("/mnt", "bind", str(data), ["rbind"]))
    if user_namespace:
        userns.enable(spec)
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    out, err = status.stdout.decode(), status.stderr.decode()
    assert out.split("\n")[0] == "0"  # root inside, in both cases
    if user_namespace:
        assert status.code != 0 and "wrote" not in out
        assert "Permission denied" in err
        assert (data / "file").read_text() == "host\n"
    else:
        assert status.code == 0 and "wrote" in out
        assert (data / "file").read_text() == "host\ncontainer\n"


def test_userns_from_the_cli(nobody: Unprivileged) -> None:
    result = run_root(
        nobody.rootfs, "sh", "-c", "cat /proc/self/uid_map; id -u", options=("--userns",)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", str(NOBODY), "1", "0"]


def test_explicit_uidmap(nobody: Unprivileged) -> None:
    result = run_root(
        nobody.rootfs,
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id",
        options=("--uidmap", "0:200000:2000", "-u", "1000"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", "200000", "2000"]
    assert lines[1].split() == ["0", "200000", "2000"]  # --gidmap defaults to --uidmap
    assert "uid=1000(learner) gid=1000(learner)" in lines[2]


# --- an ordinary user (rootless) ------------------------------------------------------------------


def test_rootless_run(nobody: Unprivileged) -> None:
    result = nobody.kit(
        "run", "--rootfs", str(nobody.rootfs), "sh", "-c", "id; cat /proc/self/uid_map; hostname"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1].split() == ["0", str(NOBODY), "1"]
    # State went to the user's XDG runtime directory, not /run/kit.
    (state_file,) = (nobody.runtime_dir / "kit" / "containers").glob("*/state.json")
    state = json.loads(state_file.read_text())
    assert state["exit_code"] == 0
    assert lines[2] == state["id"][:12]
    assert os.stat(state_file).st_uid == NOBODY
    rm = nobody.kit("rm", state["id"])
    if rm.returncode != 0:  # `kit rm` may not exist yet: remove the record by hand
        subprocess.run(["rm", "-rf", str(state_file.parent)], check=True)


def test_rootless_root_cannot_write_host_root_owned_files(nobody: Unprivileged) -> None:
    # /etc/passwd of the rootfs belongs to host root: inside, it belongs to nobody.
    result = nobody.kit(
        "run",
        "--rm",
        "--rootfs",
        str(nobody.rootfs),
        "sh",
        "-c",
        "ls -ln /etc/passwd; echo x >> /etc/passwd && echo wrote",
    )
    assert result.returncode != 0
    assert "wrote" not in result.stdout
    assert result.stdout.split()[2:4] == [str(NOBODY), str(NOBODY)]  # owner unmapped
    assert "Permission denied" in result.stderr


def test_rootless_with_the_hosts_network_binds_sys(nobody: Unprivileged) -> None:
    # sysfs can be mounted only by the owner of the network namespace; with --net host the
    # container gets the host's /sys, read-only, instead.
    result = nobody.kit(
        "run", "--rm", "--net", "host", "--rootfs", str(nobody.rootfs), "ls", "/sys/class/net"
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == set(os.listdir("/sys/class/net"))


def test_rootless_subordinate_ranges_through_newuidmap(nobody: Unprivileged) -> None:
    if userns.helper("newuidmap") is None or userns.helper("newgidmap") is None:
        pytest.skip("newuidmap/newgidmap (package uidmap) are not installed setuid")
    prefix = with_subordinate_ids(nobody.base / "subuid", "nobody:300000:65536")
    result = nobody.kit(
        "run",
        "--rm",
        "--rootfs",
        str(nobody.rootfs),
        "-u",
        "learner",
        "sh",
        "-c",
        "cat /proc/self/uid_map; id",
        prefix=prefix,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", str(NOBODY), "1"]
    assert lines[1].split() == ["1", "300000", "65536"]
    assert lines[2].startswith("uid=1000(learner) gid=1000(learner)")


def test_rootless_unmapped_user_is_explained(nobody: Unprivileged) -> None:
    result = nobody.kit("run", "--rm", "--rootfs", str(nobody.rootfs), "-u", "1000:1000", "id")
    assert result.returncode == 125
    assert "EINVAL" in result.stderr and "no mapping" in result.stderr


def test_rootless_limits_are_refused_not_ignored(nobody: Unprivileged) -> None:
    result = nobody.kit("run", "--rm", "--memory", "64m", "--rootfs", str(nobody.rootfs), "true")
    assert result.returncode == 2
    assert "cannot be enforced in rootless mode" in result.stderr


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0:1000", "a:b:c", "0:1000:0"])
def test_bad_uidmap(busybox_rootfs: Path, value: str) -> None:
    result = run_root(busybox_rootfs, "true", options=("--uidmap", value))
    assert result.returncode == 2
    assert "invalid --uidmap" in result.stderr


def test_root_userns_with_a_rootfs_behind_a_private_directory(busybox_rootfs: Path) -> None:
    # busybox_rootfs lives under pytest's root-only (0700) directory, and so does KIT_ROOT,
    # where /etc/hostname is kept: the init parent opens both from outside (open_tree), and
    # the container's root (nobody on the host) gets them without walking those paths.
    result = run_root(busybox_rootfs, "sh", "-c", "id -u; cat /etc/hostname", options=("--userns",))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "0" and len(lines[1]) == 12


def test_root_userns_overlay_of_layers_behind_a_private_directory(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    # The layers sit under pytest's root-only (0700) directories, out of reach of the
    # container's root (nobody on the host): the init parent builds the overlay with host
    # privileges before the user namespace exists, and the container attaches it.
    top = tmp_path / "top"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "layer").write_text("from the top layer\n")
    spec = default_spec(["sh", "-c", "id -u; cat /etc/layer"], str(tmp_path / "merged"))
    spec.kit.overlay = OverlaySpec(lowers=[str(top), str(busybox_rootfs)])
    userns.enable(spec)
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    assert status.code == 0, status.error
    assert status.stdout.decode().split("\n")[:2] == ["0", "from the top layer"]


def test_user_namespaces_unavailable_points_to_doctor(busybox_rootfs: Path) -> None:
    # In a user namespace whose root set max_user_namespaces to 0, no further one can be made
    # (the limit is per user namespace, so the host is untouched).
    script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    result = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "kit",
            "run",
            "--rm",
            "--userns",
            "--rootfs",
            str(busybox_rootfs),
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 125, result.stderr
    assert "clone(" in result.stderr and "ENOSPC" in result.stderr
    assert "kit doctor" in result.stderr
