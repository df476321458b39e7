"""``kit export``, ``kit cp``, ``kit mounts`` and ``kit top``.

Export must give the container's files (image layers + writable layer, whiteouts applied),
never /proc, /sys or volumes, and never touch the host's mount table (the leak guard checks
it, and each test compares the table before and after). cp must resolve container paths inside
the container: hostile symlinks planted by the container never lead kit to a host path.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from helpers import host_mount_keys, new_mounts_naming
from lifecycle_helpers import busybox_image, find_record, kit, remove_all, stopped, wait_for

pytestmark = pytest.mark.usefixtures("kit_root", "containers")


@pytest.fixture
def containers() -> object:
    yield
    remove_all()


@pytest.fixture
def image(kit_root: Path, tmp_path: Path) -> str:
    return busybox_image(kit_root, tmp_path)


def export(name: str) -> tarfile.TarFile:
    data = subprocess.run(
        [sys.executable, "-m", "kit", "export", name], capture_output=True, check=True
    ).stdout
    return tarfile.open(fileobj=io.BytesIO(data))


# --- export -------------------------------------------------------------------------------------


def test_export_of_a_stopped_image_container_applies_its_changes(
    image: str, kit_root: Path
) -> None:
    script = "echo new > /srv/new.txt; rm /etc/motd; mkdir -p /opt/app; echo tmp > /tmp/scratch"
    kit("run", "--name", "changed", image, "sh", "-c", script)
    before = host_mount_keys()
    archive = export("changed")
    assert new_mounts_naming(before, kit_root) == []  # detached: no mount table saw it
    names = set(archive.getnames())
    assert {"bin/busybox", "srv/data.txt", "srv/new.txt", "opt/app"} <= names
    assert "etc/motd" not in names  # the whiteout hides the image's file
    assert not any(n.startswith(("tmp/", "proc/", "sys/", "dev/")) for n in names)
    new = archive.extractfile("srv/new.txt")
    assert new is not None and new.read() == b"new\n"
    busybox = archive.getmember("bin/busybox")
    assert busybox.size == os.path.getsize("/bin/busybox") and busybox.mode & 0o111
    assert archive.getmember("bin/sh").issym() and archive.getmember("bin/sh").linkname == "busybox"


def test_export_of_a_running_container_leaves_out_its_mounts(image: str, kit_root: Path) -> None:
    kit("run", "-d", "--name", "live", image, "sh", "-c", "echo up > /srv/live.txt; sleep 1000")
    container_dir = kit_root / "run" / "containers" / find_record(kit_root, "live")["id"]
    wait_for(lambda: (container_dir / "upper" / "srv" / "live.txt").exists(), what="the write")
    names = set(export("live").getnames())
    assert "srv/live.txt" in names and "srv/data.txt" in names
    # /proc, /dev and /tmp are mounts of the container: their mount points only, empty.
    for point in ("proc", "dev", "tmp"):
        assert not any(n.startswith(point + "/") and n != point + "/" for n in names), point


def test_export_of_a_rootfs_container_matches_tar(busybox_rootfs: Path, tmp_path: Path) -> None:
    kit("run", "--name", "plain", "--rootfs", str(busybox_rootfs), "true")
    ours = sorted(n.rstrip("/") for n in export("plain").getnames())
    listing = subprocess.run(
        ["tar", "-C", str(busybox_rootfs), "-cf", "-", "."], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(listing)) as theirs:
        expected = sorted(n.removeprefix("./").rstrip("/") for n in theirs.getnames())
    assert ours == [n for n in expected if n not in ("", ".")]


def test_export_keeps_hostile_symlinks_as_symlinks(image: str) -> None:
    kit(
        "run",
        "--name",
        "evil",
        image,
        "sh",
        "-c",
        "ln -s /etc/shadow /srv/shadow; ln -s ../../../../ /srv/up",
    )
    archive = export("evil")
    assert archive.getmember("srv/shadow").linkname == "/etc/shadow"
    assert archive.getmember("srv/up").linkname == "../../../../"
    assert not any(n.startswith("srv/up/") for n in archive.getnames())


def test_export_gives_container_ids_through_every_map_range(image: str) -> None:
    """With several map ranges a host id is not "container id + root's host id": export
    must translate each owner back through the range that holds it."""
    maps = ("--uidmap", "0:100000:1", "--uidmap", "1:200000:65535")
    gids = ("--gidmap", "0:100000:1", "--gidmap", "1:200000:65535")
    script = "echo x > /srv/mine; chown 1:2 /srv/mine; echo y > /srv/root"
    kit("run", "--name", "mapped", *maps, *gids, image, "sh", "-c", script)
    archive = export("mapped")
    mine, root = archive.getmember("srv/mine"), archive.getmember("srv/root")
    assert (mine.uid, mine.gid) == (1, 2)
    assert (root.uid, root.gid) == (0, 0)
    # kit cp's tar stream records the container's ids too.
    command = [sys.executable, "-m", "kit", "cp", "mapped:/srv/mine", "-"]
    stream = subprocess.run(command, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(stream)) as copied:
        assert (copied.getmember("mine").uid, copied.getmember("mine").gid) == (1, 2)


def test_export_refuses_a_terminal(busybox_rootfs: Path) -> None:
    kit("run", "--name", "t", "--rootfs", str(busybox_rootfs), "true")
    # `script` gives kit a terminal as stdout.
    result = subprocess.run(
        ["script", "-qec", f"{sys.executable} -m kit export t", "/dev/null"],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert "refusing to write a tar stream to a terminal" in result.stdout


# --- cp -----------------------------------------------------------------------------------------


def test_cp_out_of_and_into_a_running_container(image: str, tmp_path: Path) -> None:
    kit("run", "-d", "--name", "box", image, "sleep", "1000")
    out = tmp_path / "out"
    out.mkdir()
    kit("cp", "box:/srv/data.txt", str(out))
    assert (out / "data.txt").read_text() == "image data\n"
    kit("cp", "box:/etc", str(out / "etc-copy"))
    assert (out / "etc-copy" / "passwd").read_text().startswith("root:x:0:0")
    source = tmp_path / "in.txt"
    source.write_text("from the host\n")
    kit("cp", str(source), "box:/tmp/")  # into the container's /tmp tmpfs (a mount)
    assert kit("exec", "box", "cat", "/tmp/in.txt").stdout == "from the host\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    kit("cp", str(tree), "box:/srv/tree")
    assert kit("exec", "box", "cat", "/srv/tree/sub/f").stdout == "deep\n"
    owner = kit("exec", "box", "stat", "-c", "%u:%g", "/srv/tree/sub/f").stdout.strip()
    assert owner == "0:0"  # copied-in files belong to the container's root


def test_cp_never_follows_container_symlinks_to_the_host(image: str, tmp_path: Path) -> None:
    marker = f"kit-cp-escape-{uuid.uuid4().hex}"
    kit(
        "run",
        "-d",
        "--name",
        "trap",
        image,
        "sh",
        "-c",
        "ln -s /tmp /srv/hosttmp; ln -s / /srv/root; sleep 1000",
    )
    wait_for(
        lambda: kit("exec", "trap", "readlink", "/srv/root", check=False).stdout.strip() == "/"
    )
    source = tmp_path / marker
    source.write_text("planted\n")
    # /srv/hosttmp -> /tmp: in the container that is its own /tmp, never the host's.
    kit("cp", str(source), "trap:/srv/hosttmp/")
    assert not Path("/tmp", marker).exists()
    assert kit("exec", "trap", "cat", f"/tmp/{marker}").stdout == "planted\n"
    # Reading through /srv/root/etc/passwd gives the container's passwd, not the host's.
    out = tmp_path / "passwd"
    kit("cp", "trap:/srv/root/etc/passwd", str(out))
    assert out.read_text().startswith("root:x:0:0:root:/root:/bin/sh\napp:x:1000")
    # A magic link (/proc/self/root) is refused rather than followed.
    refused = kit("cp", "trap:/proc/1/root/etc/passwd", str(tmp_path / "x"), check=False)
    assert refused.returncode != 0 and not (tmp_path / "x").exists()


def test_cp_strips_setuid_and_skips_devices_on_the_way_out(image: str, tmp_path: Path) -> None:
    kit(
        "run",
        "--name",
        "special",
        "-u",
        "0",
        "--cap-add",
        "MKNOD",
        image,
        "sh",
        "-c",
        "mkdir /x; echo s > /x/suid; chmod 4755 /x/suid; mknod /x/disk b 8 0",
    )
    out = tmp_path / "out"
    kit("cp", "special:/x", str(out))
    mode = (out / "suid").stat().st_mode
    assert stat.S_IMODE(mode) == 0o755  # no setuid bit on the host
    assert not (out / "disk").exists()


def test_cp_into_a_stopped_image_container_lands_in_its_layer(
    image: str, kit_root: Path, tmp_path: Path
) -> None:
    kit("run", "--name", "idle", image, "true")
    source = tmp_path / "note"
    source.write_text("later\n")
    before = host_mount_keys()
    kit("cp", str(source), "idle:/srv/note")
    kit("cp", str(source), "idle:/etc/motd")  # over a file of the image: copied up
    assert new_mounts_naming(before, kit_root) == []
    upper = kit_root / "run" / "containers" / find_record(kit_root, "idle")["id"] / "upper"
    assert (upper / "srv" / "note").read_text() == "later\n"
    assert (upper / "etc" / "motd").read_text() == "later\n"
    names = set(export("idle").getnames())
    assert "srv/note" in names


def test_cp_tar_stream_and_contents_of_a_directory(image: str, tmp_path: Path) -> None:
    kit("run", "-d", "--name", "src", image, "sleep", "1000")
    data = subprocess.run(
        [sys.executable, "-m", "kit", "cp", "src:/srv", "-"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as stream:
        assert stream.getnames() == ["srv", "srv/data.txt"]
        assert stream.getmember("srv").isdir()
    dest = tmp_path / "flat"
    dest.mkdir()
    kit("cp", "src:/srv/.", str(dest))
    assert sorted(os.listdir(dest)) == ["data.txt"]


def test_cp_errors_are_explained(image: str, tmp_path: Path) -> None:
    kit("run", "-d", "--name", "e", image, "sleep", "1000")
    missing = kit("cp", "e:/nope", str(tmp_path), check=False)
    assert missing.returncode == 1 and "no such file in the container" in missing.stderr
    both = kit("cp", "e:/a", "e:/b", check=False)
    assert both.returncode == 2 and "exactly one side" in both.stderr


def test_cp_into_a_read_only_root_fails_clearly(image: str, tmp_path: Path) -> None:
    kit("run", "-d", "--name", "ro", "--read-only", image, "sleep", "1000")
    source = tmp_path / "f"
    source.write_text("x")
    result = kit("cp", str(source), "ro:/srv/f", check=False)
    assert result.returncode == 1 and "EROFS" in result.stderr and "read-only" in result.stderr


# --- mounts, top ------------------------------------------------------------------------------


def test_mounts_shows_the_tree_with_propagation(busybox_rootfs: Path) -> None:
    kit("run", "-d", "--name", "m", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    tree = kit("mounts", "m").stdout
    lines = tree.splitlines()
    root = next(line for line in lines if "└── /" in line or "├── /" in line)
    assert "private" in root
    pts = next(line for line in lines if "/dev/pts" in line)
    dev = next(line for line in lines if " /dev " in line + " " and "tmpfs" in line)
    # /dev/pts is drawn below /dev: deeper indentation.
    assert pts.index("/dev/pts") > dev.index("/dev")
    table = kit("mounts", "--table", "m").stdout
    assert "/proc" in table and "propagation" in table


def test_top_lists_the_containers_processes(busybox_rootfs: Path) -> None:
    kit(
        "run",
        "-d",
        "--name",
        "t",
        "--rootfs",
        str(busybox_rootfs),
        "sh",
        "-c",
        "sleep 1000 & exec sleep 999",
    )
    rows = wait_for(
        lambda: (
            [r.split() for r in kit("top", "t").stdout.splitlines()[1:] if r.strip()][1:]
            and [r.split() for r in kit("top", "t").stdout.splitlines()[1:]]
        ),
        what="two processes",
    )
    by_inner = {int(r[2]): r for r in rows}
    assert by_inner[1][-2:] == ["sleep", "999"]
    assert any(r[-2:] == ["sleep", "1000"] for r in rows)
    assert all(int(r[1]) > 1 for r in rows)  # host PIDs


def test_export_of_an_exited_container_after_its_exit_is_recorded(busybox_rootfs: Path) -> None:
    kit("run", "-d", "--name", "x", "--rootfs", str(busybox_rootfs), "true")
    wait_for(lambda: stopped("x"))
    assert "bin/busybox" in export("x").getnames()


def test_root_mount_clone_from_a_threaded_caller(image: str, kit_root: Path) -> None:
    # A threaded caller (the TUI) gets the clone from a fresh interpreter, a single-threaded one
    # (the CLI) from a fork: the same root either way, and never a mount on the host.
    import threading

    from kit.runtime.rootview import clone_root_mount

    kit("run", "-d", "--name", "cloned", image, "sh", "-c", "touch /srv/mark; sleep 1000")
    pid = find_record(kit_root, "cloned")["pid"]
    wait_for(lambda: kit("exec", "cloned", "ls", "/srv/mark", check=False).returncode == 0)
    before = host_mount_keys()
    listings: dict[str, list[str]] = {}

    def clone(label: str) -> None:
        fd = clone_root_mount(pid)
        try:
            srv = os.open("srv", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            listings[label] = sorted(os.listdir(srv))
            os.close(srv)
        finally:
            os.close(fd)

    worker = threading.Thread(target=clone, args=("thread",))
    worker.start()  # two threads in this process while it clones: a fresh interpreter helps
    worker.join()
    clone("main")  # one thread again: a forked helper
    assert listings["thread"] == listings["main"] == ["data.txt", "mark"]
    assert new_mounts_naming(before, kit_root) == []


def test_a_helper_in_a_mapped_user_namespace_opens_a_root_from_any_caller(tmp_path: Path) -> None:
    # What rootless kit does for a stopped container, driven here by root: a helper in a new
    # user namespace (container root = nobody) clones a directory and sends the mount back,
    # from a fork (one thread) and from a fresh interpreter (a threaded caller); a failure
    # comes back as the helper's own explained error.
    import tempfile
    import threading

    from kit.errors import KitError
    from kit.runtime.root_opener import RootJob, open_in_helper
    from kit.spec import IdMapping, Spec

    spec = Spec()
    spec.linux.uid_mappings = [IdMapping(0, 65534, 1)]
    spec.linux.gid_mappings = [IdMapping(0, 65534, 1)]
    # A directory nobody can reach (pytest's own are root's, mode 0700).
    tree = Path(tempfile.mkdtemp(prefix="kit-helper-test-", dir="/tmp"))
    try:
        tree.chmod(0o755)
        (tree / "inside").write_text("x")
        job = RootJob("clone", path=str(tree), spec_json=spec.to_json())
        missing = RootJob("clone", path=str(tree / "gone"), spec_json=spec.to_json())
        seen: dict[str, object] = {}

        def open_both(label: str) -> None:
            fd = open_in_helper(job)
            try:
                seen[label] = sorted(os.listdir(f"/proc/self/fd/{fd}"))
            finally:
                os.close(fd)
            try:
                open_in_helper(missing)
            except KitError as error:
                seen[f"{label} error"] = (error.errno_name, error.what)

        worker = threading.Thread(target=open_both, args=("thread",))
        worker.start()
        worker.join()
        open_both("fork")
    finally:
        shutil.rmtree(tree)
    assert seen["thread"] == seen["fork"] == ["inside"]
    assert seen["thread error"] == seen["fork error"]
    name, what = seen["fork error"]  # type: ignore[misc]
    assert name == "ENOENT" and what.startswith("open_tree(")
