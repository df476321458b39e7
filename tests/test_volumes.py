"""Bind mounts, named volumes and tmpfs mounts (-v, --tmpfs, --mount), `kit volume`, and every
kind of bad request refused before anything is created."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import kit_command, kit_popen, root_field_of

from kit import mounts, volumes
from kit.errors import KitError
from kit.rootfs import build_rootfs
from kit.runtime import user_mounts
from kit.spec import Mount

pytestmark = pytest.mark.usefixtures("kit_root")


def run(rootfs: Path, script: str, *options: str, remove: bool = True):
    first = ("run", "--rm") if remove else ("run",)
    return kit_command(*first, *options, "--rootfs", str(rootfs), "sh", "-c", script)


def mount_table(rootfs: Path, *options: str) -> list[mounts.Mount]:
    result = run(rootfs, "cat /proc/self/mountinfo", *options)
    assert result.returncode == 0, result.stderr
    return mounts.parse(result.stdout)


# --- bind mounts ---------------------------------------------------------------------------------


def test_bind_mount_shares_files_both_ways(busybox_rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("hello\n")
    result = run(
        busybox_rootfs,
        "cat /data/from-host; echo back > /data/from-container",
        "-v",
        f"{shared}:/data",
    )
    assert result.stdout == "hello\n", result.stderr
    assert (shared / "from-container").read_text() == "back\n"


def test_read_only_bind_refuses_writes(busybox_rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    result = run(busybox_rootfs, "touch /data/x", "-v", f"{shared}:/data:ro")
    assert "Read-only file system" in result.stderr
    assert not (shared / "x").exists()
    entry = mounts.find(mount_table(busybox_rootfs, "-v", f"{shared}:/data:ro"), "/data")
    assert entry is not None and entry.read_only and entry.root == root_field_of(shared)


def test_file_bind_and_relative_host_paths(
    busybox_rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "motd").write_text("welcome\n")
    monkeypatch.chdir(tmp_path)
    result = run(busybox_rootfs, "cat /etc/motd", "-v", "./motd:/etc/motd:ro")
    assert result.stdout == "welcome\n", result.stderr


def test_long_form_bind_with_propagation(busybox_rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    found = mount_table(
        busybox_rootfs,
        "--mount",
        f"type=bind,source={shared},target=/data,readonly,bind-propagation=rshared",
    )
    entry = mounts.find(found, "/data")
    assert entry is not None and entry.read_only and entry.propagation == "shared"


def test_a_slave_bind_receives_mounts_the_host_makes_later(
    busybox_rootfs: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    # A shared mount of our own as the source: mounts under it may propagate to its slaves.
    subprocess.run(["mount", "--bind", str(source), str(source)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(source)], check=True)
        container = kit_popen(
            "run",
            "--rm",
            "-i",
            "-v",
            f"{source}:/data:rslave",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "echo ready; read line; grep -c kit-late-mount /proc/self/mountinfo",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert container.stdout is not None
        assert container.stdout.readline().strip() == b"ready"
        subprocess.run(["mount", "-t", "tmpfs", "kit-late-mount", str(source / "sub")], check=True)
        try:
            out, err = container.communicate(b"\n", timeout=30)
        finally:
            subprocess.run(["umount", str(source / "sub")], check=True)
        assert out.strip() == b"1", err
    finally:
        subprocess.run(["umount", "-l", str(source)], check=True)


def test_a_shared_bind_stays_shared_after_pivot_root(busybox_rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    entry = mounts.find(mount_table(busybox_rootfs, "-v", f"{shared}:/data:rshared"), "/data")
    assert entry is not None and entry.propagation == "shared"
    private = mounts.find(mount_table(busybox_rootfs, "-v", f"{shared}:/data"), "/data")
    assert private is not None and private.propagation == "private"


# --- named volumes -------------------------------------------------------------------------------


def test_named_volume_outlives_the_container(busybox_rootfs: Path, kit_root: Path) -> None:
    first = run(busybox_rootfs, "echo kept > /cache/note", "-v", "cache:/cache")
    assert first.returncode == 0, first.stderr
    volume = volumes.get("cache")
    assert volume.mountpoint == kit_root / "volumes" / "cache" / "_data"
    assert (volume.mountpoint / "note").read_text() == "kept\n"
    second = run(
        busybox_rootfs, "cat /again/note", "--mount", "type=volume,source=cache,target=/again"
    )
    assert second.stdout == "kept\n"


def test_empty_volume_gets_the_images_files_unless_nocopy(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    build_rootfs(rootfs, "busybox")
    (rootfs / "srv" / "app").mkdir(parents=True)
    (rootfs / "srv" / "app" / "config").write_text("from the image\n")
    (rootfs / "srv" / "app" / "link").symlink_to("/etc/passwd")
    copied = run(rootfs, "cat /srv/app/config; readlink /srv/app/link", "-v", "appdata:/srv/app")
    assert copied.stdout == "from the image\n/etc/passwd\n", copied.stderr
    assert (volumes.get("appdata").mountpoint / "link").is_symlink()
    plain = run(rootfs, "ls -A /srv/app | wc -l", "-v", "bare:/srv/app:nocopy")
    assert plain.stdout.strip() == "0"


def test_populate_keeps_directory_times_and_modes(tmp_path: Path) -> None:
    """A directory's mtime and mode are set after its contents are copied, not before."""
    app = tmp_path / "rootfs" / "srv" / "app"
    (app / "sub").mkdir(parents=True)
    (app / "sub" / "file").write_text("x\n")
    (app / "sub").chmod(0o555)
    old = 978307200  # 2001-01-01
    os.utime(app / "sub", (old, old))
    copied = volumes.populate(volumes.create("times"), str(tmp_path / "rootfs"), "/srv/app")
    copy = volumes.get("times").mountpoint / "sub"
    assert copied == 2
    assert (copy / "file").read_text() == "x\n"
    assert copy.stat().st_mtime == old
    assert stat.S_IMODE(copy.stat().st_mode) == 0o555


def test_volume_commands(busybox_rootfs: Path) -> None:
    created = kit_command("volume", "create", "media", "--label", "team=blue")
    assert created.returncode == 0 and created.stdout.strip() == "media"
    listed = json.loads(kit_command("volume", "ls", "--json").stdout)
    assert [v["name"] for v in listed] == ["media"] and listed[0]["labels"] == {"team": "blue"}
    assert kit_command("volume", "ls", "-q").stdout.split() == ["media"]
    inspected = json.loads(kit_command("volume", "inspect", "media").stdout)
    assert Path(inspected[0]["mountpoint"]).is_dir()
    # A stopped container that still exists keeps the volume in use.
    kept = run(busybox_rootfs, "true", "-v", "media:/m", "--name", "user-of-media", remove=False)
    assert kept.returncode == 0, kept.stderr
    refused = kit_command("volume", "rm", "media")
    assert refused.returncode != 0 and "in use by user-of-media" in refused.stderr
    assert "user-of-media" in kit_command("volume", "ls").stdout
    forced = kit_command("volume", "rm", "-f", "media")
    assert forced.returncode == 0
    assert not Path(inspected[0]["mountpoint"]).exists()
    missing = kit_command("volume", "inspect", "media")
    assert missing.returncode != 0 and "no such volume: media" in missing.stderr


def test_volume_names_are_checked() -> None:
    for bad in ("a", "-dash", "has space", "dot/slash"):
        with pytest.raises(KitError, match="invalid volume name"):
            volumes.create(bad)


# --- tmpfs ---------------------------------------------------------------------------------------


def test_tmpfs_options_reach_the_kernel(busybox_rootfs: Path) -> None:
    found = mount_table(busybox_rootfs, "--tmpfs", "/scratch:size=2m,mode=1770,uid=5")
    entry = mounts.find(found, "/scratch")
    assert entry is not None and entry.fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= set(entry.options)  # Docker's defaults
    assert {"size=2048k", "mode=1770", "uid=5"} <= set(entry.super_options)
    exec_allowed = mounts.find(mount_table(busybox_rootfs, "--tmpfs", "/scratch:exec"), "/scratch")
    assert exec_allowed is not None and "noexec" not in exec_allowed.options


def test_long_form_tmpfs(busybox_rootfs: Path) -> None:
    found = mount_table(
        busybox_rootfs, "--mount", "type=tmpfs,target=/run/cache,tmpfs-size=1m,tmpfs-mode=700"
    )
    entry = mounts.find(found, "/run/cache")
    assert entry is not None and {"size=1024k", "mode=700"} <= set(entry.super_options)


def test_a_user_tmp_replaces_kits_default_tmp(busybox_rootfs: Path) -> None:
    found = mount_table(busybox_rootfs, "--tmpfs", "/tmp:size=1m")
    at_tmp = [m for m in found if m.mount_point == "/tmp"]
    assert len(at_tmp) == 1 and "size=1024k" in at_tmp[0].super_options


def test_parents_are_mounted_before_children(busybox_rootfs: Path, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    found = mount_table(busybox_rootfs, "--tmpfs", "/data/logs", "-v", f"{outer}:/data")
    points = [m.mount_point for m in found]
    assert points.index("/data") < points.index("/data/logs")
    assert not (outer / "logs").exists() or (outer / "logs").is_dir()


# --- bad requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("-v", "/no/such/dir:/data"), "the host path /no/such/dir does not exist"),
        (("-v", "/tmp:/proc"), "would hide the kernel's /proc"),
        (("--tmpfs", "/proc/sys"), "would hide the kernel's /proc"),
        (("-v", "/tmp:/"), "cannot replace the container's root directory"),
        (("-v", "/tmp:data"), "is not absolute"),
        (("-v", "/tmp:/data:ro,rw"), "ro and rw contradict each other"),
        (("-v", "/tmp:/data:shared,rslave"), "two propagation modes"),
        (("-v", "/tmp:/data:z"), "SELinux"),
        (("-v", "/tmp:/data:fast"), "unknown option 'fast'"),
        (("-v", "/data"), "anonymous volumes are not supported"),
        (("-v", "a/b:/data"), "neither an absolute path nor a volume name"),
        (("-v", "x:/data"), "invalid volume name"),
        (("-v", "/tmp:/data", "--tmpfs", "/data"), "/data is already the target of -v /tmp:/data"),
        (("--tmpfs", "/s:size=lots"), "bad value for size"),
        (("--tmpfs", "/s:exec,noexec"), "exec and noexec contradict"),
        (("--tmpfs", "/s:bind"), "unknown tmpfs option 'bind'"),
        (("--mount", "type=tmpfs,source=x,target=/s"), "a tmpfs has no source"),
        (("--mount", "type=bind,target=/s"), "no source"),
        (("--mount", "type=volume,source=v"), "no target"),
        (("--mount", "type=nfs,target=/s"), "unknown type 'nfs'"),
        (("--mount", "type=bind,src=/tmp,target=/s,color=red"), "unknown key 'color'"),
        (("--mount", "type=bind,src=/tmp,target=/s,readonly=maybe"), "not true or false"),
        (("--mount", "type=tmpfs,target=/s,bind-propagation=shared"), "bind-propagation is for"),
    ],
)
def test_bad_requests_are_refused_before_anything_exists(
    busybox_rootfs: Path, kit_root: Path, options: tuple[str, ...], words: str
) -> None:
    result = run(busybox_rootfs, "echo started", *options)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "started" not in result.stdout
    assert not list((kit_root / "run" / "containers").glob("*/state.json"))
    assert not (kit_root / "volumes").exists() or not volumes.list_volumes()


def test_proc_files_tools_replace_are_allowed() -> None:
    assert user_mounts.check_destination("/proc/meminfo", "-v") == "/proc/meminfo"
    assert user_mounts.check_destination("/data/../srv//x/", "-v") == "/srv/x"


def test_merge_replaces_defaults_and_sorts_parents_first() -> None:
    defaults = [Mount("/proc", "proc", "proc"), Mount("/tmp", "tmpfs", "tmpfs")]
    requested = [
        user_mounts.parse_tmpfs("/a/b/c"),
        user_mounts.parse_tmpfs("/tmp"),
        user_mounts.parse_tmpfs("/a"),
    ]
    merged = user_mounts.merge(defaults, requested)
    assert [m.destination for m in merged] == ["/proc", "/tmp", "/a", "/a/b/c"]
    assert merged[1].options[:3] == ["nosuid", "nodev", "noexec"]
