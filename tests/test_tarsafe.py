"""kit.tarsafe: hostile archives are refused and write nothing outside; good ones lose nothing.

Every hostile archive aims at a sentinel directory beside the destination. Each test checks
that the error names the offending member, that the sentinel is untouched, and (for atomic
extraction) that the destination does not exist afterwards.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from kit import tarsafe
from kit.errors import KitError
from kit.tarsafe import UnsafeMember

Entry = tuple[tarfile.TarInfo, bytes | None]


def reg(name: str, data: bytes = b"data", mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def directory(name: str, mode: int = 0o755) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def symlink(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info, None


def chardev(name: str, major: int = 1, minor: int = 3) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = major, minor
    info.mode = 0o666
    return info, None


def make_tar(path: Path, entries: Iterable[Entry], *, gz: bool = False) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | str | None]]:
    """Everything under ``root``: kind+mode, mtime and content or link target."""
    found: dict[str, tuple[int, int, bytes | str | None]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content: bytes | str | None = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = path.read_bytes()
        else:
            content = None
        found[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, content)
    return found


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): an unborn destination and a sentinel directory beside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("untouched\n")
    return tmp_path / "dest", outside


def assert_refused(
    archive: Path, dest: Path, outside: Path, member: str, reason: str
) -> UnsafeMember:
    """Atomic extraction refuses ``member``; nothing outside changed; DEST was never born."""
    before = snapshot(outside)
    siblings = set(dest.parent.iterdir())
    with pytest.raises(UnsafeMember) as caught:
        tarsafe.extract_new(archive, dest)
    error = caught.value
    assert error.member == member
    assert repr(member) in str(error)
    assert reason in error.reason
    assert error.fix
    assert snapshot(outside) == before
    assert not dest.exists()
    assert set(dest.parent.iterdir()) == siblings  # no temporary directory left behind
    return error


# --- hostile archives --------------------------------------------------------------------


def test_absolute_path(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    name = str(outside / "pwned")
    archive = make_tar(tmp_path / "a.tar", [reg("ok.txt"), reg(name)])
    assert_refused(archive, dest, outside, name, "absolute")


def test_dotdot_component(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(tmp_path / "a.tar", [reg("ok.txt"), reg("sub/../../outside/pwned")])
    assert_refused(archive, dest, outside, "sub/../../outside/pwned", "'..'")


def test_symlink_then_file_through_symlink(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar", [symlink("escape", str(outside)), reg("escape/pwned", b"evil")]
    )
    error = assert_refused(archive, dest, outside, "escape/pwned", "symlink")
    # Caught by the policy, before the kernel had to refuse anything.
    assert "'escape', a symlink made by an earlier member" in error.reason


def test_symlink_to_a_dir_then_file_inside_it(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    # A relative link that climbs out: the link itself is allowed, writing through it is not.
    archive = make_tar(
        tmp_path / "a.tar",
        [directory("etc"), symlink("etc/conf", "../../outside"), reg("etc/conf/sentinel.txt")],
    )
    assert_refused(archive, dest, outside, "etc/conf/sentinel.txt", "symlink")


def test_symlink_to_an_inside_dir_is_not_followed_either(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar", [directory("real"), symlink("alias", "real"), reg("alias/file")]
    )
    assert_refused(archive, dest, outside, "alias/file", "symlink")


def test_hardlink_to_outside(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar", [reg("ok.txt"), hardlink("steal", "../outside/sentinel.txt")]
    )
    error = assert_refused(archive, dest, outside, "steal", "'..'")
    assert "hard link target" in error.reason


def test_hardlink_to_absolute_path(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(tmp_path / "a.tar", [hardlink("steal", str(outside / "sentinel.txt"))])
    error = assert_refused(archive, dest, outside, "steal", "absolute")
    assert "hard link target" in error.reason


def test_hardlink_through_symlink(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar",
        [symlink("out", str(outside)), hardlink("steal", "out/sentinel.txt")],
    )
    assert_refused(archive, dest, outside, "steal", "symlink")


def test_hardlink_to_a_file_not_in_the_archive(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(tmp_path / "a.tar", [reg("a"), hardlink("b", "etc/shadow")])
    assert_refused(archive, dest, outside, "b", "not a file this archive already extracted")


def test_device_node_when_not_allowed(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(tmp_path / "a.tar", [directory("dev"), chardev("dev/mem", 1, 1)])
    error = assert_refused(archive, dest, outside, "dev/mem", "character device")
    assert "allow" in (error.fix or "")


def test_duplicate_replaces_dir_with_symlink_then_writes_through(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar",
        [
            directory("d"),
            reg("d/a"),
            symlink("d", str(outside)),
            reg("d/pwned", b"evil"),
        ],
    )
    assert_refused(archive, dest, outside, "d/pwned", "symlink")


def test_stream_is_refused_at_the_member_and_writes_nothing_outside(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    """A pipe cannot be validated up front: the per-member check still refuses in time."""
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar", [reg("first"), symlink("escape", str(outside)), reg("escape/pwned")]
    )
    dest.mkdir()
    before = snapshot(outside)
    with (
        subprocess.Popen(["cat", str(archive)], stdout=subprocess.PIPE) as cat,
        pytest.raises(UnsafeMember) as caught,
    ):
        assert cat.stdout is not None
        tarsafe.extract(cat.stdout, dest)
    assert caught.value.member == "escape/pwned"
    assert snapshot(outside) == before
    # Extraction stopped at the bad member: what came before it is there, nothing after.
    assert (dest / "first").is_file()
    assert os.readlink(dest / "escape") == str(outside)


def test_kernel_refuses_a_symlink_already_in_the_destination(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    """The archive alone looks harmless; the destination already holds a link out."""
    dest, outside = sandbox
    dest.mkdir()
    (dest / "etc").symlink_to(outside)
    archive = make_tar(tmp_path / "a.tar", [reg("etc/sentinel.txt", b"evil")])
    before = snapshot(outside)
    with pytest.raises(UnsafeMember) as caught:
        tarsafe.extract(archive, dest)
    assert caught.value.member == "etc/sentinel.txt"
    assert "O_NOFOLLOW" in caught.value.reason
    assert snapshot(outside) == before


def test_kernel_enforces_even_if_the_policy_is_wrong(
    tmp_path: Path, sandbox: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break the policy on purpose: the O_NOFOLLOW walk alone must still stop the write."""
    dest, outside = sandbox

    def no_checks(self: tarsafe.Policy, member: tarfile.TarInfo) -> tuple[str, ...]:
        return tuple(p for p in member.name.split("/") if p not in ("", "."))

    monkeypatch.setattr(tarsafe.Policy, "check", no_checks)
    archive = make_tar(
        tmp_path / "a.tar", [symlink("escape", str(outside)), reg("escape/pwned", b"evil")]
    )
    before = snapshot(outside)
    with pytest.raises(UnsafeMember) as caught:
        tarsafe.extract_new(archive, dest)
    assert caught.value.member == "escape/pwned"
    assert snapshot(outside) == before
    assert not dest.exists()


def test_validate_refuses_without_writing(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    archive = make_tar(tmp_path / "a.tar", [reg("ok"), reg("../outside/pwned")])
    before = snapshot(outside)
    with pytest.raises(UnsafeMember, match="outside/pwned"):
        tarsafe.validate(archive)
    assert not dest.exists()
    assert snapshot(outside) == before
    good = make_tar(tmp_path / "good.tar", [directory("a"), reg("a/b"), hardlink("c", "a/b")])
    with good.open("rb") as f:
        f.seek(0)
        members = tarsafe.validate(f)
        assert f.tell() == 0  # left where it was, ready for extract()
    assert [m.name for m in members] == ["a", "a/b", "c"]


def test_replace_keeps_the_old_tree_when_the_new_archive_is_hostile(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    archive = make_tar(tmp_path / "a.tar", [reg("new"), symlink("x", str(outside)), reg("x/pwned")])
    with pytest.raises(UnsafeMember):
        tarsafe.extract_new(archive, dest, replace=True)
    assert (dest / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "dest", "outside"]


# --- good archives -----------------------------------------------------------------------


def _tree(root: Path) -> dict[str, dict[str, object]]:
    """Everything extraction must preserve, per path."""
    found: dict[str, dict[str, object]] = {}
    inodes: dict[int, str] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        entry: dict[str, object] = {
            "mode": stat.filemode(st.st_mode),
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mtime": int(st.st_mtime),
        }
        if stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(path)
        else:
            entry["xattrs"] = {k: os.getxattr(path, k) for k in sorted(os.listxattr(path))}
        if stat.S_ISREG(st.st_mode):
            entry["data"] = path.read_bytes()
            if st.st_nlink > 1:
                entry["same_inode_as"] = inodes.setdefault(st.st_ino, rel)
        found[rel] = entry
    return found


def _source_tree(src: Path) -> None:
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_bytes(b"\x7fELF fake")
    os.chmod(src / "bin" / "tool", 0o4755)  # setuid survives (chmod after chown)
    (src / "bin" / "alias").hardlink_to(src / "bin" / "tool")
    (src / "bin" / "sh").symlink_to("tool")
    (src / "abs").symlink_to("/bin/tool")  # absolute: fine in a root filesystem
    (src / "dangling").symlink_to("/does/not/exist")
    (src / "secret").mkdir(mode=0o750)
    os.chmod(src / "secret", 0o750)
    (src / "secret" / "key").write_bytes(b"k" * 10000)
    os.chmod(src / "secret" / "key", 0o600)
    os.chown(src / "secret" / "key", 1234, 5678)
    os.chown(src / "secret", 1000, 1000)
    os.lchown(src / "dangling", 42, 43)
    (src / "empty").write_bytes(b"")
    os.mkfifo(src / "pipe", 0o620)
    os.setxattr(src / "bin" / "tool", "user.kit.note", b"hello")
    os.setxattr(src / "secret", "user.kit.dir", b"\x00\xffbinary")
    os.setxattr(src / "empty", "user.empty-value", b"")
    for path in sorted(src.rglob("*"), reverse=True):
        os.utime(path, (1_600_000_000, 1_600_000_000), follow_symlinks=False)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_round_trip_with_gnu_tar(tmp_path: Path, compress: bool) -> None:
    """GNU tar writes the archive (the oracle); kit must recreate the same tree."""
    src = tmp_path / "src"
    _source_tree(src)
    archive = tmp_path / ("a.tar.gz" if compress else "a.tar")
    subprocess.run(
        [
            "tar",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-cpf" if not compress else "-czpf",
            str(archive),
            "-C",
            str(src),
            ".",
        ],
        check=True,
    )
    dest = tmp_path / "dest"
    report = tarsafe.extract_new(archive, dest)
    assert _tree(dest) == _tree(src)
    assert report.hardlinks == 1 and report.symlinks == 3 and report.fifos == 1
    assert report.xattrs == 3
    assert (dest / "bin" / "tool").stat().st_ino == (dest / "bin" / "alias").stat().st_ino


def test_devices_when_allowed(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [directory("dev"), chardev("dev/null", 1, 3)])
    dest = tmp_path / "dest"
    report = tarsafe.extract_new(archive, dest, allow_devices=True)
    st = (dest / "dev" / "null").lstat()
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert report.devices == 1


def test_duplicates_later_entry_wins(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar",
        [
            reg("f", b"old"),
            reg("f", b"new"),
            directory("d"),
            reg("d/inner"),
            reg("d", b"now a file"),
            reg("l", b"file first"),
            symlink("l", "f"),
            directory("x", 0o700),
            directory("x", 0o751),
        ],
    )
    dest = tmp_path / "dest"
    tarsafe.extract_new(archive, dest)
    assert (dest / "f").read_bytes() == b"new"
    assert (dest / "d").is_file() and (dest / "d").read_bytes() == b"now a file"
    assert os.readlink(dest / "l") == "f"
    assert stat.S_IMODE((dest / "x").stat().st_mode) == 0o751


def test_replacing_a_directory_removes_it_without_following_links(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    archive = make_tar(
        tmp_path / "a.tar",
        [directory("d"), symlink("d/out", str(outside)), reg("d", b"file now")],
    )
    before = snapshot(outside)
    tarsafe.extract_new(archive, dest)
    assert (dest / "d").read_bytes() == b"file now"
    assert snapshot(outside) == before


def test_hook_translates_whiteouts(tmp_path: Path) -> None:
    """The way an image layer extractor uses the hook: ``.wh.NAME`` deletes NAME."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old").mkdir()
    (dest / "old" / "file").write_text("lower layer")
    (dest / "gone.txt").write_text("lower layer")
    archive = make_tar(
        tmp_path / "layer.tar",
        [reg(".wh.gone.txt", b""), reg("old/.wh.file", b""), reg("added", b"upper")],
    )

    def whiteouts(member: tarfile.TarInfo, job: tarsafe.Extraction) -> tarfile.TarInfo | None:
        head, _, base = member.name.rpartition("/")
        if base.startswith(".wh."):
            job.remove(f"{head}/{base[4:]}" if head else base[4:])
            return None
        return member

    report = tarsafe.extract(archive, dest, on_member=whiteouts)
    assert sorted(p.name for p in dest.rglob("*")) == ["added", "old"]
    assert report.handled_by_hook == [".wh.gone.txt", "old/.wh.file"]
    assert report.files == 1


def test_hook_never_sees_an_unsafe_name(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    dest.mkdir()
    seen: list[str] = []

    def spy(member: tarfile.TarInfo, job: tarsafe.Extraction) -> tarfile.TarInfo | None:
        seen.append(member.name)
        return member

    archive = make_tar(tmp_path / "a.tar", [reg("fine"), reg("../outside/.wh.sentinel.txt")])
    with pytest.raises(UnsafeMember):
        tarsafe.extract(archive, dest, on_member=spy, validate_first=False)
    assert seen == ["fine"]
    assert (outside / "sentinel.txt").exists()


def test_root_entry_and_implicit_parents(tmp_path: Path) -> None:
    root = tarfile.TarInfo(".")
    root.type = tarfile.DIRTYPE
    root.mode = 0o755
    archive = make_tar(tmp_path / "a.tar", [(root, None), reg("./a/b/c.txt", b"deep")])
    dest = tmp_path / "dest"
    tarsafe.extract_new(archive, dest)
    assert (dest / "a" / "b" / "c.txt").read_bytes() == b"deep"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def test_not_a_tar_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"this is not a tar archive at all" * 100)
    with pytest.raises(KitError, match="not a tar archive") as caught:
        tarsafe.extract_new(bogus, tmp_path / "dest")
    assert caught.value.fix
    assert not (tmp_path / "dest").exists()


def test_existing_destination_needs_replace(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [reg("new.txt", b"new")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(KitError, match="not empty") as caught:
        tarsafe.extract_new(archive, dest)
    assert "--force" in (caught.value.fix or "")
    assert (dest / "old.txt").exists()
    tarsafe.extract_new(archive, dest, replace=True)
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "dest"]


def test_safe_root_refuses_dotdot_and_symlinked_parents(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with tarsafe.SafeRoot(root) as safe:
        with pytest.raises(KitError, match=r"'\.\.'"):
            safe.write_file("../escape", b"x")
        with pytest.raises(tarsafe.BlockedPath) as caught:
            safe.write_file("link/escape", b"x")
        assert caught.value.component == "link" and caught.value.kind == "a symlink"
        safe.write_file("/etc/hostname", b"kit\n")  # a leading / means the root
    assert not (tmp_path / "escape").exists()
    assert (root / "etc" / "hostname").read_bytes() == b"kit\n"


def test_libarchive_xattrs(tmp_path: Path) -> None:
    """bsdtar writes xattrs as LIBARCHIVE.xattr.NAME = base64(value), NAME url-encoded."""
    info, data = reg("f", b"x")
    info.pax_headers = {
        "LIBARCHIVE.xattr.user.caf%C3%A9": "aGk",  # "hi", unpadded as bsdtar writes it
        "SCHILY.xattr.user.raw": b"\x00\xfe".decode("utf-8", "surrogateescape"),
    }
    archive = make_tar(tmp_path / "a.tar", [(info, data)])
    dest = tmp_path / "dest"
    tarsafe.extract_new(archive, dest)
    assert os.getxattr(dest / "f", "user.café") == b"hi"
    assert os.getxattr(dest / "f", "user.raw") == b"\x00\xfe"


def test_hook_can_make_overlay_whiteouts(tmp_path: Path) -> None:
    """What an overlay layer needs: a char device 0/0 whiteout and an opaque directory."""
    archive = make_tar(
        tmp_path / "layer.tar", [directory("d"), reg("d/.wh..wh..opq", b""), reg("d/.wh.x", b"")]
    )

    def overlay(member: tarfile.TarInfo, job: tarsafe.Extraction) -> tarfile.TarInfo | None:
        head, _, base = member.name.rpartition("/")
        if base == ".wh..wh..opq":
            job.setxattr(head, "user.overlay.opaque", b"y")
            return None
        if base.startswith(".wh."):
            job.mknod(f"{head}/{base[4:]}", stat.S_IFCHR, os.makedev(0, 0))
            return None
        return member

    dest = tmp_path / "dest"
    dest.mkdir()
    tarsafe.extract(archive, dest, on_member=overlay)
    st = (dest / "d" / "x").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "d", "user.overlay.opaque") == b"y"
    assert sorted(p.name for p in (dest / "d").iterdir()) == ["x"]
