"""kit.rootfs and ``kit rootfs``: real root filesystems, checked by running programs in them.

The host rootfs is built once per session (a fraction of a second here, but several tests
read it). Programs are run with the host's ``chroot`` (these tests run as root).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from kit import elf, paths, rootfs
from kit.cli import rootfs as rootfs_cli
from kit.errors import KitError
from kit.rootpath import resolve_in_root
from kit.tarsafe import UnsafeMember


def chroot(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": rootfs.CONTAINER_PATH, "LC_ALL": "C"},
    )


@pytest.fixture(scope="session")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rootfs.RootfsReport]:
    dest = tmp_path_factory.mktemp("host-rootfs") / "root"
    return dest, rootfs.build_rootfs(dest)


@pytest.fixture(scope="session")
def busybox_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rootfs.RootfsReport]:
    dest = tmp_path_factory.mktemp("busybox-rootfs") / "root"
    return dest, rootfs.build_rootfs(dest, "busybox")


def sentinel(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("untouched\n")
    return outside


# --- host ----------------------------------------------------------------------------------


def test_host_rootfs_runs_a_shell(host_build: tuple[Path, rootfs.RootfsReport]) -> None:
    root, _ = host_build
    result = chroot(root, "echo hi; ls /")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "hi"
    assert {"bin", "etc", "lib", "proc", "dev", "sys", "tmp", "usr", "var"} <= set(lines)


def test_host_rootfs_has_the_loader_and_libc(
    host_build: tuple[Path, rootfs.RootfsReport],
) -> None:
    root, report = host_build
    host_ls = shutil.which("ls", path=rootfs.HOST_PATH)
    assert host_ls
    loader = elf.interpreter(host_ls)
    assert loader
    # Resolved the way the container will: /lib64 -> usr/lib64 -> ... all inside the root.
    inside = Path(resolve_in_root(str(root), loader))
    assert inside.is_relative_to(root) and inside.is_file()
    assert inside.read_bytes() == Path(loader).read_bytes()
    libc = next(lib for lib in report.closure["ls"] if lib.endswith("/libc.so.6"))
    inside_libc = Path(resolve_in_root(str(root), libc))
    assert inside_libc.is_file() and elf.is_elf(inside_libc)
    assert loader in report.closure["ls"]


def test_every_program_finds_all_its_libraries_inside(
    host_build: tuple[Path, rootfs.RootfsReport],
) -> None:
    """Ask the loader *inside the root* to resolve each program: nothing may be missing."""
    root, report = host_build
    dynamic = [p for p in report.programs if p.kind == "dynamic"]
    assert len(dynamic) > 30
    script = "; ".join(
        f"out=$({p.interpreter} --list {p.path} 2>&1) || echo BROKEN {p.name} $out" for p in dynamic
    )
    result = chroot(root, script)
    assert result.returncode == 0, result.stderr
    assert "BROKEN" not in result.stdout
    # And they run: a few, with their real output.
    result = chroot(root, "uname -s; id -un; basename /a/b; echo x | tr x y; [ -d /tmp ] && pwd")
    assert result.stdout.split() == ["Linux", "root", "b", "y", "/"], result.stderr


def test_host_rootfs_identity_files(host_build: tuple[Path, rootfs.RootfsReport]) -> None:
    root, _ = host_build
    result = chroot(root, "id learner; id nobody; whoami; cat /etc/hostname")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=1000(learner) gid=1000(learner) groups=1000(learner)"
    assert lines[1].startswith("uid=65534(nobody)")
    assert lines[2:] == ["root", "kit"]
    release = (root / "etc" / "os-release").read_text()
    assert "KIT_ROOTFS_SOURCE=host" in release and "ID=kit" in release
    for name in ("group", "hosts", "resolv.conf", "nsswitch.conf", "profile"):
        assert (root / "etc" / name).is_file()
    assert stat.S_IMODE((root / "etc" / "shadow").stat().st_mode) == 0o640
    assert (root / "home" / "learner").stat().st_uid == 1000


def test_host_rootfs_directory_modes(host_build: tuple[Path, rootfs.RootfsReport]) -> None:
    root, _ = host_build
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "var" / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "root").stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    for name in ("proc", "dev", "sys", "run"):
        assert (root / name).is_dir() and not any((root / name).iterdir())


def test_host_layout_mirrors_usr_merge(host_build: tuple[Path, rootfs.RootfsReport]) -> None:
    root, _ = host_build
    for name in ("bin", "sbin", "lib", "lib64"):
        host = Path("/") / name
        ours = root / name
        if host.is_symlink():
            assert ours.is_symlink() and os.readlink(ours) == os.readlink(host)
        else:
            assert ours.is_dir() and not ours.is_symlink()
    # sh keeps the host's name for it (Debian: sh -> dash) and PATH finds everything.
    result = chroot(root, "command -v ls; command -v chroot; readlink /bin/sh")
    assert result.stdout.split()[:2] == ["/usr/bin/ls", "/usr/sbin/chroot"]
    assert result.stdout.split()[2] == os.readlink("/bin/sh")


def test_host_rootfs_is_small_and_has_no_setuid(
    host_build: tuple[Path, rootfs.RootfsReport],
) -> None:
    root, report = host_build
    size, _ = rootfs.tree_size(root)
    assert size < 64 * 1024 * 1024
    assert report.total_bytes == size
    for path in root.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), path


def test_host_report_describes_programs(host_build: tuple[Path, rootfs.RootfsReport]) -> None:
    _, report = host_build
    sh = next(p for p in report.programs if p.name == "sh")
    assert sh.real_path == str(Path("/usr/bin") / os.readlink("/usr/bin/sh"))
    assert sh.kind == "dynamic" and sh.size > 0
    assert sum(p.size for p in report.programs) <= report.total_bytes
    assert not report.warnings
    json.dumps(report.to_dict())  # JSON-ready
    for program in report.programs:
        assert program.kind in ("dynamic", "static", "script")


def test_host_rootfs_with_chosen_programs(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    report = rootfs.build_rootfs(dest, programs=["ls"], extra_programs=["readlink"])
    assert [p.name for p in report.programs] == ["sh", "ls", "readlink"]
    result = chroot(dest, "ls /usr/bin")
    assert result.returncode == 0, result.stderr
    names = set(result.stdout.split())
    assert {"ls", "sh", "readlink"} <= names and "cat" not in names


def test_scripts_bring_their_interpreter(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    script = tools / "hello"
    script.write_text("#!/usr/bin/dash\necho hello from a script\n")
    script.chmod(0o755)
    dest = tmp_path / "root"
    report = rootfs.build_rootfs(dest, programs=[str(script)])
    program = report.programs[-1]
    assert program.kind == "script" and program.interpreter == "/usr/bin/dash"
    result = chroot(dest, f"{script}")
    assert result.stdout == "hello from a script\n", result.stderr


def test_a_host_without_sh_gets_bash_as_sh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "bash").symlink_to("/usr/bin/bash")
    monkeypatch.setattr(rootfs, "HOST_PATH", str(fakebin))
    dest = tmp_path / "root"
    report = rootfs.build_rootfs(dest, programs=[])
    assert report.missing == ["sh"]
    result = chroot(dest, 'echo "$BASH_VERSION"')
    assert result.returncode == 0 and result.stdout.strip(), result.stderr


def test_unknown_program_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    with pytest.raises(KitError, match="no-such-program-kit") as caught:
        rootfs.build_rootfs(dest, programs=["ls", "no-such-program-kit"])
    assert caught.value.fix
    assert list(tmp_path.iterdir()) == []


def test_existing_destination_needs_force(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    (dest / "mine").write_text("keep me")
    with pytest.raises(KitError, match="not empty") as caught:
        rootfs.build_rootfs(dest, programs=["ls"])
    assert "--force" in (caught.value.fix or "")
    assert (dest / "mine").read_text() == "keep me"
    rootfs.build_rootfs(dest, programs=["ls"], replace=True)
    assert not (dest / "mine").exists() and (dest / "etc" / "passwd").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_an_empty_destination_is_used(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    rootfs.build_rootfs(dest, "busybox")
    assert (dest / "bin" / "busybox").is_file()


def test_arguments_are_checked_before_building(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    with pytest.raises(KitError, match="unknown root filesystem source"):
        rootfs.build_rootfs(dest, "debian")
    with pytest.raises(KitError, match="needs the archive"):
        rootfs.build_rootfs(dest, "tar")
    with pytest.raises(KitError, match="--program only applies"):
        rootfs.build_rootfs(dest, "busybox", programs=["ls"])
    with pytest.raises(KitError, match="does not exist"):
        rootfs.build_rootfs(dest, "tar", tar_file=tmp_path / "missing.tar")
    assert list(tmp_path.iterdir()) == []


def test_default_rootfs_is_built_once(kit_root: Path) -> None:
    path = rootfs.default_rootfs()
    assert path == paths.default_rootfs() and path.is_relative_to(kit_root)
    assert "KIT_ROOTFS_SOURCE=host" in (path / "etc" / "os-release").read_text()
    marker = (path / "etc" / "os-release").stat().st_ino
    assert rootfs.default_rootfs() == path
    assert (path / "etc" / "os-release").stat().st_ino == marker  # not rebuilt
    assert chroot(path, "echo ok").stdout == "ok\n"


# --- busybox -------------------------------------------------------------------------------


def test_busybox_rootfs_runs(busybox_build: tuple[Path, rootfs.RootfsReport]) -> None:
    root, report = busybox_build
    result = chroot(root, "echo ok")
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    assert os.readlink(root / "bin" / "ls") == "/bin/busybox"
    assert elf.is_static(root / "bin" / "busybox")
    busybox = report.programs[0]
    assert busybox.kind == "static" and len(busybox.links) > 100
    assert "/bin/sh" in busybox.links
    result = chroot(root, "ls /bin | wc -l; id learner")
    lines = result.stdout.split("\n")
    assert int(lines[0]) > 50
    assert lines[1].startswith("uid=1000(learner)")


def test_busybox_missing_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs, "BUSYBOX_PATHS", (str(tmp_path / "nowhere"),))
    monkeypatch.setenv("PATH", str(tmp_path))
    dest = tmp_path / "root"
    with pytest.raises(KitError, match="busybox is not installed") as caught:
        rootfs.build_rootfs(dest, "busybox")
    assert caught.value.fix == "sudo apt-get install busybox-static"
    assert not dest.exists()


def test_dynamic_busybox_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_ls = shutil.which("ls", path=rootfs.HOST_PATH)
    monkeypatch.setattr(rootfs, "BUSYBOX_PATHS", (host_ls,))
    with pytest.raises(KitError, match="not statically linked") as caught:
        rootfs.build_rootfs(tmp_path / "root", "busybox")
    assert "busybox-static" in (caught.value.fix or "")


# --- tar -----------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        entry: dict[str, object] = {
            "mode": stat.filemode(st.st_mode),
            "owner": (st.st_uid, st.st_gid),
            "mtime": int(st.st_mtime),
            "nlink": st.st_nlink if stat.S_ISREG(st.st_mode) else None,
        }
        if stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(path)
        else:
            entry["xattrs"] = {k: os.getxattr(path, k) for k in sorted(os.listxattr(path))}
        found[str(path.relative_to(root))] = entry
    return found


@pytest.mark.parametrize("flags", ["-cpf", "-czpf"], ids=["plain", "gzip"])
def test_tar_round_trip(
    tmp_path: Path, busybox_build: tuple[Path, rootfs.RootfsReport], flags: str
) -> None:
    source = tmp_path / "source"
    shutil.copytree(busybox_build[0], source, symlinks=True)
    (source / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    os.chmod(source / "bin" / "tool", 0o4750)
    os.chown(source / "bin" / "tool", 0, 1000)
    (source / "bin" / "tool-again").hardlink_to(source / "bin" / "tool")
    os.setxattr(source / "bin" / "tool", "user.kit.origin", b"test")
    os.setxattr(source / "etc", "user.kit.dir", b"\x01\x02")
    os.chown(source / "home" / "learner", 1000, 1000)
    (source / "relative").symlink_to("bin/tool")
    archive = tmp_path / "root.tar"
    gnu_tar = ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", flags]
    subprocess.run([*gnu_tar, str(archive), "-C", str(source), "."], check=True)
    dest = tmp_path / "dest"
    report = rootfs.build_rootfs(dest, "tar", tar_file=archive)
    assert _tree(dest) == _tree(source)
    assert (dest / "bin" / "tool").stat().st_ino == (dest / "bin" / "tool-again").stat().st_ino
    assert report.warnings == []
    assert report.extract is not None and report.extract.hardlinks == 1
    assert report.programs[0].kind == "static"
    assert chroot(dest, "tool").stdout == "tool\n"


def _tar(path: Path, files: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def test_tar_without_a_shell_warns(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", {"etc/hostname": b"box\n"})
    report = rootfs.build_rootfs(tmp_path / "dest", "tar", tar_file=archive)
    assert len(report.warnings) == 1 and "/bin/sh" in report.warnings[0]


def test_tar_with_a_missing_loader_warns_and_exec_says_enoent(tmp_path: Path) -> None:
    """The classic: the shell is there, its loader is not, and exec says 'No such file'."""
    dash = Path(os.path.realpath("/bin/sh")).read_bytes()
    archive = _tar(tmp_path / "a.tar", {"bin/sh": dash})
    dest = tmp_path / "dest"
    report = rootfs.build_rootfs(dest, "tar", tar_file=archive)
    loader = elf.interpreter(os.path.realpath("/bin/sh"))
    assert len(report.warnings) == 1
    assert str(loader) in report.warnings[0] and "ENOENT" in report.warnings[0]
    result = subprocess.run(["chroot", str(dest), "/bin/sh"], capture_output=True, text=True)
    assert result.returncode == 127
    assert "No such file or directory" in result.stderr


def test_tar_with_a_damaged_shell_warns(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", {"bin/sh": b"\x7fELF\x02\x01\x01 and then nothing"})
    report = rootfs.build_rootfs(tmp_path / "dest", "tar", tar_file=archive)
    assert len(report.warnings) == 1 and "damaged ELF" in report.warnings[0]
    assert (tmp_path / "dest" / "bin" / "sh").is_file()


def test_tar_symlinked_shell_is_resolved_inside(tmp_path: Path) -> None:
    """/bin/sh -> /bin/busybox is absolute: checked inside the root, not on the host."""
    busybox = Path(rootfs.find_busybox()).read_bytes()
    archive = _tar(
        tmp_path / "a.tar", {"usr/lib/box": busybox}, symlinks={"bin/sh": "/usr/lib/box"}
    )
    report = rootfs.build_rootfs(tmp_path / "dest", "tar", tar_file=archive)
    assert report.warnings == []
    assert report.programs[0].kind == "static"


def test_hostile_tar_is_refused_and_dest_never_exists(tmp_path: Path) -> None:
    outside = sentinel(tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, target in [
            ("bin", tarfile.DIRTYPE, ""),
            ("etc", tarfile.SYMTYPE, str(outside)),
            ("etc/sentinel.txt", tarfile.REGTYPE, ""),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    archive = tmp_path / "evil.tar"
    archive.write_bytes(buffer.getvalue())
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeMember) as caught:
        rootfs.build_rootfs(dest, "tar", tar_file=archive)
    assert caught.value.member == "etc/sentinel.txt"
    assert "'etc/sentinel.txt'" in str(caught.value)
    assert not dest.exists()
    assert (outside / "sentinel.txt").read_text() == "untouched\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar", "outside"]


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 1
    return info


#: (case, members as (name, type, link), the member that must be refused). ``OUT`` is the
#: sentinel directory beside DEST, ``../outside`` the same seen from inside DEST.
HOSTILE = [
    ("absolute", [("OUT/pwned", tarfile.REGTYPE, "")], "OUT/pwned"),
    ("dotdot", [("a/../../outside/pwned", tarfile.REGTYPE, "")], "a/../../outside/pwned"),
    (
        "symlink-then-file",
        [("s", tarfile.SYMTYPE, "OUT"), ("s/pwned", tarfile.REGTYPE, "")],
        "s/pwned",
    ),
    (
        "symlink-dir-then-file",
        [
            ("d", tarfile.DIRTYPE, ""),
            ("d/up", tarfile.SYMTYPE, "../../outside"),
            ("d/up/pwned", tarfile.REGTYPE, ""),
        ],
        "d/up/pwned",
    ),
    ("hardlink-outside", [("h", tarfile.LNKTYPE, "../outside/sentinel.txt")], "h"),
    ("hardlink-absolute", [("h", tarfile.LNKTYPE, "OUT/sentinel.txt")], "h"),
    ("device", [("dev/mem", tarfile.CHRTYPE, "")], "dev/mem"),
    (
        "dir-replaced-by-symlink",
        [
            ("etc", tarfile.DIRTYPE, ""),
            ("etc", tarfile.SYMTYPE, "OUT"),
            ("etc/sentinel.txt", tarfile.REGTYPE, ""),
        ],
        "etc/sentinel.txt",
    ),
]


@pytest.mark.parametrize(("members", "bad"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_tar_rootfs_build(
    tmp_path: Path, members: list[tuple[str, bytes, str]], bad: str
) -> None:
    outside = sentinel(tmp_path)

    def real(text: str) -> str:
        return text.replace("OUT", str(outside))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member("bin", tarfile.DIRTYPE))
        for name, kind, link in members:
            payload = io.BytesIO(b"") if kind == tarfile.REGTYPE else None
            tar.addfile(_member(real(name), kind, real(link)), payload)
    archive = tmp_path / "evil.tar"
    archive.write_bytes(buffer.getvalue())
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeMember) as caught:
        rootfs.build_rootfs(dest, "tar", tar_file=archive)
    assert caught.value.member == real(bad)
    assert repr(real(bad)) in str(caught.value)
    assert not dest.exists()
    assert [p.name for p in outside.iterdir()] == ["sentinel.txt"]
    assert (outside / "sentinel.txt").read_text() == "untouched\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar", "outside"]


def test_tar_devices_need_permission(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("dev/null")
        info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tar.addfile(info)
    archive = tmp_path / "dev.tar"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeMember, match="dev/null"):
        rootfs.build_rootfs(tmp_path / "refused", "tar", tar_file=archive)
    assert not (tmp_path / "refused").exists()
    rootfs.build_rootfs(tmp_path / "allowed", "tar", tar_file=archive, allow_devices=True)
    assert stat.S_ISCHR((tmp_path / "allowed" / "dev" / "null").lstat().st_mode)


# --- the command line ----------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kit")
    rootfs_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_build_from_tar_and_list(
    kit_root: Path,
    busybox_build: tuple[Path, rootfs.RootfsReport],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "box.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(busybox_build[0]), "."], check=True)
    dest = paths.rootfs_dir() / "box"
    # FILE after --from tar: the order the hints elsewhere in kit print.
    assert run_cli(["rootfs", "build", str(dest), "--from", "tar", str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"built a tar root filesystem at {dest}" in out
    assert "/bin/sh: static" in out
    assert run_cli(["rootfs", "ls", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["source"]) for e in listed] == [("box", "busybox")]
    assert listed[0]["bytes"] > 1_000_000
    assert run_cli(["rootfs", "ls"]) == 0
    assert "box" in capsys.readouterr().out


def test_cli_build_host_with_programs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "root"
    assert run_cli(["rootfs", "build", str(dest), "--only", "-p", "ls", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in report["programs"]] == ["sh", "ls"]
    assert run_cli(["rootfs", "build", str(dest), "--only", "-p", "cat", "--force", "-v"]) == 0
    out = capsys.readouterr().out
    assert "programs in" in out and "cat" in out
    assert (dest / "usr" / "bin" / "cat").exists() and not (dest / "usr" / "bin" / "ls").exists()


def test_cli_errors(tmp_path: Path, kit_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(KitError, match="apply to --from host") as caught:
        run_cli(["rootfs", "build", str(tmp_path / "x"), "--from", "busybox", "-p", "ls"])
    assert caught.value.exit_code == 2
    assert run_cli(["rootfs", "ls"]) == 0
    assert "no root filesystems under" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()
