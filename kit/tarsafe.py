"""Safe extraction of tar archives: nothing is ever written outside the destination.

A tar archive is a list of members, each a path plus a type (file, directory, symlink, hard
link, fifo, device) and metadata. Unpacking one naively is a classic way to overwrite the host:

* ``/etc/passwd`` or ``../../etc/passwd``: a path that starts outside the destination;
* ``etc -> /etc`` followed by ``etc/passwd``: a symlink created by the archive itself, then a
  file written *through* it (the kernel follows the link and lands on the host's /etc);
* a hard link to ``/etc/shadow``: a second name for a host file, inside the destination;
* a device node such as ``/dev/sda``: raw access to host hardware.

kit defends in two layers. The *policy* (:func:`validate`, also run as each member is
extracted) refuses such members with an error naming the member, the reason and the fix. The
*mechanism* (:class:`SafeRoot`) never lets the kernel follow a symlink while writing: every
path is walked one directory at a time with ``openat(dirfd, name, O_NOFOLLOW|O_DIRECTORY)`` and
every file is created relative to the directory it belongs in. So even if the policy had a
bug, the kernel would refuse (ELOOP/ENOTDIR) instead of writing outside.

Symlinks *themselves* may point anywhere: ``/bin/sh -> /bin/bash`` is normal in a root
filesystem and is resolved inside the container, once it is the container's ``/``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kit.errors import KitError

Parts = tuple[str, ...]

#: ``on_member`` hook: gets each member and the running :class:`Extraction`; returns the
#: member to extract (possibly changed), or None when it handled the member itself (e.g. an
#: image layer turning a ``.wh.NAME`` whiteout into a deletion or an overlay char device 0/0).
MemberHook = Callable[[tarfile.TarInfo, "Extraction"], "tarfile.TarInfo | None"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_TRUST_FIX = (
    "this archive is malformed or hostile: do not use it. If you made it, rebuild it from "
    "inside the directory with relative paths: `tar -C DIR -cf FILE.tar .`"
)


class UnsafeMember(KitError):
    """A tar member kit refuses to extract; ``member`` is its name as stored in the archive."""

    def __init__(self, member: str, reason: str, fix: str = _TRUST_FIX) -> None:
        super().__init__(f"refusing tar member {member!r}", cause=reason, fix=fix)
        self.member = member
        self.reason = reason


class BlockedPath(KitError):
    """The kernel refused to walk a path: one component is a symlink or not a directory."""

    def __init__(self, root: Path, path: str, component: str, kind: str, err: int) -> None:
        super().__init__(
            f"cannot write {path!r} inside {root}",
            errno=err,
            cause=f"{component!r} is {kind}, and kit never follows a link while writing (it "
            "could point outside the root)",
            fix="remove that entry from the root, or build the root again",
        )
        self.path = path
        self.component = component
        self.kind = kind


def split(path: str) -> Parts:
    """Split a path inside a root into its components: ``"/usr//bin/./ls"`` -> (usr, bin, ls).

    A leading ``/`` means the root itself (this is a path *inside* the root). ``..`` is
    refused: it is the one component that can climb out of a directory by name alone.
    """
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        raise KitError(
            f"refusing path {path!r}",
            cause="it contains '..', which could climb out of the root",
            fix="give the path without '..'",
        )
    return parts


def _describe(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if stat.S_ISREG(st.st_mode):
        return "a regular file"
    return "not a directory"


class SafeRoot:
    """A directory that kit writes into without ever following a symlink.

    Paths given to its methods are inside the root (``"usr/bin/ls"`` or ``"/usr/bin/ls"``).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # The root itself is the caller's choice, so it may be reached through symlinks.
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_dir(self, parts: Parts, *, create: bool = False, mode: int = 0o755) -> int:
        """Open the directory ``parts`` one component at a time, never following a symlink.

        With ``create``, missing directories are made (with ``mode``). Returns a new fd; the
        caller closes it. Raises :class:`BlockedPath` if a component is a symlink or a file.
        """
        fd = os.dup(self.fd)
        try:
            for depth, name in enumerate(parts):
                try:
                    next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, mode, dir_fd=fd)
                    next_fd = self._open_child(fd, parts, depth)
                except OSError as exc:
                    self._blocked(fd, parts, depth, exc)
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_child(self, fd: int, parts: Parts, depth: int) -> int:
        try:
            return os.open(parts[depth], _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            self._blocked(fd, parts, depth, exc)
            raise

    def _blocked(self, fd: int, parts: Parts, depth: int, exc: OSError) -> None:
        # O_NOFOLLOW|O_DIRECTORY on a symlink gives ENOTDIR (or ELOOP): say which it was.
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            return
        try:
            kind = _describe(os.stat(parts[depth], dir_fd=fd, follow_symlinks=False))
        except OSError:
            kind = "not a directory"
        raise BlockedPath(
            self.path, "/".join(parts), "/".join(parts[: depth + 1]), kind, exc.errno or 0
        ) from None

    @contextlib.contextmanager
    def parent(self, parts: Parts, *, create: bool = True) -> Iterator[int]:
        """The fd of the directory that holds ``parts`` (its last component is not opened)."""
        if not parts:
            raise KitError("the root itself has no parent inside the root")
        fd = self.open_dir(parts[:-1], create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    def lstat(self, path: str | Parts) -> os.stat_result | None:
        """lstat of an entry, or None if it does not exist (parents must not be symlinks)."""
        parts = split(path) if isinstance(path, str) else path
        if not parts:
            return os.fstat(self.fd)
        try:
            with self.parent(parts, create=False) as fd:
                return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def remove(self, path: str | Parts) -> bool:
        """Remove an entry (a directory with everything in it); False if it did not exist."""
        parts = split(path) if isinstance(path, str) else path
        try:
            with self.parent(parts, create=False) as fd:
                return clear(fd, parts[-1])
        except FileNotFoundError:
            return False

    def makedirs(self, path: str | Parts, mode: int = 0o755) -> None:
        """``mkdir -p`` inside the root; existing directories keep their mode."""
        parts = split(path) if isinstance(path, str) else path
        os.close(self.open_dir(parts, create=True, mode=mode))

    def write_file(
        self,
        path: str | Parts,
        data: bytes | BinaryIO,
        mode: int = 0o644,
        *,
        mtime_ns: int | None = None,
    ) -> int:
        """Create (or replace) a regular file; returns the number of bytes written."""
        parts = split(path) if isinstance(path, str) else path
        with self.parent(parts) as dir_fd:
            clear(dir_fd, parts[-1])
            fd = os.open(parts[-1], _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
            try:
                size = _write_all(fd, data)
                os.fchmod(fd, mode)  # after writing: the mode may be read-only
                if mtime_ns is not None:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        return size

    def symlink(self, target: str, path: str | Parts) -> None:
        """Create (or replace) a symlink; its target is stored as given, never followed."""
        parts = split(path) if isinstance(path, str) else path
        with self.parent(parts) as dir_fd:
            clear(dir_fd, parts[-1])
            os.symlink(target, parts[-1], dir_fd=dir_fd)

    def chmod(self, path: str | Parts, mode: int) -> None:
        """Change the mode of a file or directory (never through a symlink)."""
        parts = split(path) if isinstance(path, str) else path
        if not parts:
            os.fchmod(self.fd, mode)
            return
        with self.parent(parts, create=False) as dir_fd:
            _chmod_at(dir_fd, parts[-1], mode)

    def chown(self, path: str | Parts, uid: int, gid: int) -> None:
        """Change the owner of an entry itself (a symlink is changed, not its target)."""
        parts = split(path) if isinstance(path, str) else path
        if not parts:
            os.fchown(self.fd, uid, gid)
            return
        with self.parent(parts, create=False) as dir_fd:
            os.chown(parts[-1], uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def mknod(self, path: str | Parts, mode: int, device: int = 0) -> None:
        """Create (or replace) a fifo or a device node (``mode`` includes S_IFCHR etc.)."""
        parts = split(path) if isinstance(path, str) else path
        with self.parent(parts) as dir_fd:
            clear(dir_fd, parts[-1])
            os.mknod(parts[-1], mode, device, dir_fd=dir_fd)
            _chmod_at(dir_fd, parts[-1], stat.S_IMODE(mode))  # mknod's mode passed the umask

    def setxattr(self, path: str | Parts, name: str, value: bytes) -> None:
        """Set an extended attribute on an entry itself (not through a symlink)."""
        parts = split(path) if isinstance(path, str) else path
        if not parts:
            os.setxattr(self.fd, name, value)
            return
        with self.parent(parts, create=False) as dir_fd:
            _setxattr_at(dir_fd, parts[-1], name, value)


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def clear(dir_fd: int, name: str) -> bool:
    """Remove ``name`` in ``dir_fd`` whatever it is, never following it; False if absent."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by file descriptor and never follows symlinks inside.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return True


def _write_all(fd: int, data: bytes | BinaryIO) -> int:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        total = len(view)
        while view:
            view = view[os.write(fd, view) :]
        return total
    total = 0
    while chunk := data.read(1 << 20):
        total += _write_all(fd, chunk)
    return total


def _proc_path(fd: int, name: str | None = None) -> str:
    # /proc/self/fd/N is the directory (or inode) behind fd N, whatever path led there. It
    # lets kit name "this exact entry" for calls that take no dir_fd (setxattr, chmod).
    return f"/proc/self/fd/{fd}" + (f"/{name}" if name else "")


def _chmod_at(dir_fd: int, name: str, mode: int) -> None:
    # Linux's fchmodat cannot refuse to follow a symlink, so open the entry itself with
    # O_PATH|O_NOFOLLOW and change the inode behind that fd. Symlinks have no mode of their own.
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            return
        os.chmod(_proc_path(fd), mode)
    finally:
        os.close(fd)


def _setxattr_at(dir_fd: int, name: str, key: str, value: bytes) -> None:
    # The parent directory is reached through its fd; the entry itself is not followed.
    os.setxattr(_proc_path(dir_fd, name), key, value, follow_symlinks=False)


# --- the policy ----------------------------------------------------------------------------


_SCHILY = "SCHILY.xattr."  # GNU tar and Go's archive/tar: the name as is, the raw value
_LIBARCHIVE = "LIBARCHIVE.xattr."  # bsdtar: the name URL-encoded, the value base64


def xattr_name(pax_key: str) -> str | None:
    """The extended attribute a PAX header key records, or None for any other header."""
    if pax_key.startswith(_SCHILY):
        return pax_key[len(_SCHILY) :]
    if pax_key.startswith(_LIBARCHIVE):
        return urllib.parse.unquote(pax_key[len(_LIBARCHIVE) :])
    return None


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    """Extended attributes recorded in a member's PAX headers (GNU tar / libarchive style)."""
    found: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        name = xattr_name(key)
        if name is None:
            continue
        if key.startswith(_SCHILY):
            # tarfile decoded the raw bytes with surrogateescape; this gives them back exactly.
            found[name] = value.encode("utf-8", "surrogateescape")
        else:
            found[name] = base64.b64decode(value + "=" * (-len(value) % 4))
    return found


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isreg():
        return "file"
    if member.isfifo():
        return "fifo"
    if member.ischr() or member.isblk():
        return "device"
    return "unknown"


class Policy:
    """The rules every member must pass, checked against what the archive built so far.

    It remembers the kind of every path the archive created (``dir``, ``file``, ``symlink``,
    ...) so it can refuse a member whose path goes through a symlink made by an earlier member
    ("symlink, then file through the symlink") before anything touches the disk.
    """

    def __init__(self, *, allow_devices: bool = False) -> None:
        self.allow_devices = allow_devices
        self.kinds: dict[Parts, str] = {}

    def parts(self, name: str, member: str | None = None, *, what: str = "its path") -> Parts:
        """Split a member name, refusing absolute paths, ``..`` and paths through symlinks."""
        member = name if member is None else member
        if name and not name.strip("/"):
            return ()  # "/" alone names the root itself (umoci writes such an entry): harmless
        if name.startswith("/"):
            raise UnsafeMember(
                member,
                f"{what} is absolute ({name!r}): extracted as-is it would land on the host's "
                f"{name} instead of inside the destination",
            )
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if ".." in parts:
            raise UnsafeMember(
                member,
                f"{what} contains '..' ({name!r}), which climbs out of the destination",
            )
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            kind = self.kinds.get(prefix)
            if kind == "symlink":
                raise UnsafeMember(
                    member,
                    f"{what} goes through {'/'.join(prefix)!r}, a symlink made by an earlier "
                    "member of this archive; writing through it would follow the link, "
                    "possibly out of the destination",
                )
            if kind not in (None, "dir"):
                raise UnsafeMember(
                    member,
                    f"{what} goes through {'/'.join(prefix)!r}, which this archive made a "
                    f"{kind}, not a directory",
                )
        return parts

    def check(self, member: tarfile.TarInfo) -> Parts:
        """All the rules for one member; returns its path components (empty for the root)."""
        parts = self.parts(member.name)
        kind = _kind(member)
        if kind == "unknown":
            raise UnsafeMember(
                member.name,
                f"its type {member.type!r} is not one kit knows how to extract",
                "repack the archive with GNU tar (regular files, directories and links only)",
            )
        if not parts and kind != "dir":
            raise UnsafeMember(member.name, f"it names the destination itself but is a {kind}")
        if kind == "device" and not self.allow_devices:
            letter = "character" if member.ischr() else "block"
            raise UnsafeMember(
                member.name,
                f"it is a {letter} device node (major {member.devmajor}, minor "
                f"{member.devminor}); a device node in a root filesystem gives whoever can "
                "open it direct access to that device on the host",
                "allow devices only for archives you trust (allow_devices=True, "
                "`--allow-devices`); a container normally gets its /dev from the runtime",
            )
        if kind == "hardlink":
            target = self.parts(member.linkname, member.name, what="its hard link target")
            target_kind = self.kinds.get(target)
            if target_kind is None:
                raise UnsafeMember(
                    member.name,
                    f"its hard link target {member.linkname!r} is not a file this archive "
                    "already extracted; a hard link may only give a second name to one of "
                    "the archive's own files",
                )
            if target_kind == "dir":
                raise UnsafeMember(
                    member.name, f"its hard link target {member.linkname!r} is a directory"
                )
            if target == parts:
                raise UnsafeMember(member.name, "it is a hard link to itself")
        return parts

    def record(self, member: tarfile.TarInfo, parts: Parts) -> None:
        """Remember what a member created (call after :meth:`check` and the write)."""
        kind = _kind(member)
        if kind == "hardlink":
            kind = self.kinds[self.parts(member.linkname, member.name)]
        self.created(parts, kind)

    def created(self, parts: Parts, kind: str) -> None:
        """Remember that ``parts`` is now a ``kind`` (its parents are directories)."""
        for depth in range(1, len(parts)):
            self.kinds.setdefault(parts[:depth], "dir")
        if self.kinds.get(parts) == "dir" and kind != "dir":
            self.forget(parts)
        self.kinds[parts] = kind

    def forget(self, parts: Parts) -> None:
        """Forget an entry and everything under it (it was removed or replaced)."""
        for known in [p for p in self.kinds if p[: len(parts)] == parts]:
            del self.kinds[known]


# --- reading archives ----------------------------------------------------------------------


def _seekable(fileobj: BinaryIO) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError):
        return False


@contextlib.contextmanager
def open_archive(archive: str | os.PathLike[str] | BinaryIO) -> Iterator[tarfile.TarFile]:
    """Open a tar archive (plain, gzip, bzip2 or xz; detected from its first bytes).

    ``archive`` is a path or a binary file object; a file object that cannot seek is read as
    a stream (one pass, in order), so it can come straight from a pipe or a download.
    """
    owned: BinaryIO | None = None
    name = str(archive) if isinstance(archive, str | os.PathLike) else "archive"
    try:
        if isinstance(archive, str | os.PathLike):
            try:
                owned = open(archive, "rb")  # noqa: SIM115 (closed in finally)
            except OSError as exc:
                raise KitError(
                    f"cannot open archive {name}",
                    errno=exc.errno,
                    fix="check the path of the tar file",
                ) from None
            fileobj: BinaryIO = owned
        else:
            fileobj = archive
            name = str(getattr(archive, "name", name))
        mode = "r:*" if _seekable(fileobj) else "r|*"
        try:
            tar = tarfile.open(fileobj=fileobj, mode=mode)  # noqa: SIM115 (closed below)
        except (tarfile.ReadError, tarfile.CompressionError, EOFError) as exc:
            raise KitError(
                f"{name} is not a tar archive kit can read",
                cause=f"{exc}; kit reads plain tar and tar compressed with gzip, bzip2 or xz",
                fix="check the file (`file FILE`); decompress other formats first, e.g. "
                "`zstd -d FILE`",
            ) from None
        try:
            yield tar
        finally:
            tar.close()
    finally:
        if owned is not None:
            owned.close()


def validate(
    archive: str | os.PathLike[str] | BinaryIO, *, allow_devices: bool = False
) -> list[tarfile.TarInfo]:
    """Check every member against the policy without writing anything; return the members.

    Reads the whole archive (headers only for a plain file). A seekable file object is left
    where it started, so it can be handed to :func:`extract` next; a stream is consumed.
    """
    start = None
    if not isinstance(archive, str | os.PathLike) and _seekable(archive):
        start = archive.tell()
    with open_archive(archive) as tar:
        members = _checked(tar, Policy(allow_devices=allow_devices))
    if start is not None:
        archive.seek(start)  # type: ignore[union-attr]
    return members


def _checked(tar: tarfile.TarFile, policy: Policy) -> list[tarfile.TarInfo]:
    members = []
    for member in tar:
        policy.record(member, policy.check(member))
        members.append(member)
    return members


# --- extraction ----------------------------------------------------------------------------


@dataclass
class ExtractReport:
    """What an extraction created, for a summary line or a lesson."""

    members: int = 0
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    fifos: int = 0
    devices: int = 0
    bytes: int = 0
    xattrs: int = 0
    handled_by_hook: list[str] = field(default_factory=list)


class Extraction:
    """One running extraction. ``on_member`` hooks get it to act on the destination safely."""

    def __init__(self, root: SafeRoot, policy: Policy, same_owner: bool) -> None:
        self.root = root
        self.policy = policy
        self.same_owner = same_owner
        self.report = ExtractReport()
        # Directory metadata is applied last: creating entries inside a directory changes its
        # mtime, and a read-only directory would refuse new entries (to non-root users).
        self._dirs: dict[Parts, tarfile.TarInfo] = {}

    # Operations for hooks: they keep the policy's picture of the tree up to date.

    def remove(self, path: str) -> bool:
        """Remove an entry (and everything under it) from the destination, like a whiteout."""
        parts = self.policy.parts(path)
        self.policy.forget(parts)
        self._forget_dirs(parts)
        return self.root.remove(parts)

    def mknod(self, path: str, mode: int, device: int = 0) -> None:
        """Create a fifo or device node, e.g. overlayfs's whiteout (char device 0/0)."""
        parts = self.policy.parts(path)
        self._forget_dirs(parts)
        self.root.mknod(parts, mode, device)
        self.policy.created(parts, "fifo" if stat.S_ISFIFO(mode) else "device")

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        """Set an extended attribute, e.g. overlayfs's opaque-directory marker."""
        self.root.setxattr(self.policy.parts(path), name, value)

    def _forget_dirs(self, parts: Parts) -> None:
        for known in [p for p in self._dirs if p[: len(parts)] == parts]:
            del self._dirs[known]

    # The extraction itself.

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, hook: MemberHook | None) -> None:
        """Check one member, offer it to the hook, and write it."""
        self.report.members += 1
        if hook is not None:
            self.policy.parts(member.name)  # a hook never sees an unsafe name
            replacement = hook(member, self)
            if replacement is None:
                self.report.handled_by_hook.append(member.name)
                return
            member = replacement
        parts = self.policy.check(member)
        try:
            self._write(tar, member, parts)
        except BlockedPath as exc:
            raise UnsafeMember(
                member.name,
                f"its path goes through {exc.component!r}, which is {exc.kind} in the "
                "destination; the kernel refused to follow it (O_NOFOLLOW)",
            ) from None
        except OSError as exc:
            raise KitError(
                f"cannot extract tar member {member.name!r}",
                errno=exc.errno,
                cause=_os_cause(exc, member),
                fix=_os_fix(exc),
            ) from None
        self.policy.record(member, parts)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: Parts) -> None:
        if member.isdir():
            self.report.dirs += 1
            if parts:
                with self.root.parent(parts) as dir_fd:
                    existing = _lstat_at(dir_fd, parts[-1])
                    if existing is None or not stat.S_ISDIR(existing.st_mode):
                        clear(dir_fd, parts[-1])  # a directory replaces a file or a link
                        os.mkdir(parts[-1], 0o700, dir_fd=dir_fd)
            self._dirs[parts] = member  # a later duplicate's metadata wins
            return

        # Anything else replaces whatever was there (later entries win, as in GNU tar).
        self._forget_dirs(parts)
        name = parts[-1]
        with self.root.parent(parts) as dir_fd:
            clear(dir_fd, name)
            if member.isreg():
                self._write_regular(tar, member, dir_fd, name)
                return
            if member.islnk():
                target = self.policy.parts(member.linkname, member.name)
                with self.root.parent(target, create=False) as target_fd:
                    # linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
                    os.link(
                        target[-1],
                        name,
                        src_dir_fd=target_fd,
                        dst_dir_fd=dir_fd,
                        follow_symlinks=False,
                    )
                self.report.hardlinks += 1
                return  # a hard link shares its target's inode, metadata included
            if member.issym():
                os.symlink(member.linkname, name, dir_fd=dir_fd)
                self.report.symlinks += 1
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=dir_fd)
                self.report.fifos += 1
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                device = os.makedev(member.devmajor, member.devminor)
                os.mknod(name, kind | 0o600, device, dir_fd=dir_fd)
                self.report.devices += 1
            self._metadata_at(dir_fd, name, member)

    def _write_regular(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, dir_fd: int, name: str
    ) -> None:
        # O_EXCL|O_NOFOLLOW: create a new file, never open one (or a link) already there.
        fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            source = tar.extractfile(member)
            if source is not None:
                self.report.bytes += _write_all(fd, source)
            self._metadata_of_fd(fd, member)
        finally:
            os.close(fd)
        self.report.files += 1

    def _metadata_of_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and mtime of an open file or directory."""
        if self.same_owner:
            os.fchown(fd, member.uid, member.gid)
        # chmod after chown: changing the owner clears the setuid and setgid bits.
        os.fchmod(fd, stat.S_IMODE(member.mode))
        for key, value in xattrs_of(member).items():
            os.setxattr(fd, key, value)
            self.report.xattrs += 1
        os.utime(fd, ns=(_ns(member.mtime), _ns(member.mtime)))

    def _metadata_at(self, dir_fd: int, name: str, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and mtime of a symlink, fifo or device, never following it."""
        if self.same_owner:
            os.chown(name, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
        if not member.issym():
            _chmod_at(dir_fd, name, stat.S_IMODE(member.mode))
        for key, value in xattrs_of(member).items():
            _setxattr_at(dir_fd, name, key, value)
            self.report.xattrs += 1
        mtime = _ns(member.mtime)
        os.utime(name, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)

    def finish(self) -> None:
        """Apply directory metadata, deepest first.

        Deepest first because a parent whose recorded mode shuts us out (0o000 for a user
        other than root) must not stop us from reaching its children.
        """
        for parts in sorted(self._dirs, key=len, reverse=True):
            member = self._dirs[parts]
            try:
                fd = self.root.open_dir(parts)
                try:
                    self._metadata_of_fd(fd, member)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise KitError(
                    f"cannot set the metadata of directory {member.name!r}",
                    errno=exc.errno,
                    cause=_os_cause(exc, member),
                    fix=_os_fix(exc),
                ) from None


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


def _os_cause(exc: OSError, member: tarfile.TarInfo) -> str:
    if exc.errno == errno.EPERM and (member.ischr() or member.isblk()):
        return "only root (CAP_MKNOD) can create device nodes"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "this user may not set that owner, mode or attribute"
    if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
        xattrs = ", ".join(xattrs_of(member)) or "none"
        return f"the destination's filesystem does not support it (xattrs: {xattrs})"
    if exc.errno == errno.ENOSPC:
        return "the destination's filesystem is full"
    return exc.strerror or "the kernel refused"


def _os_fix(exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "extract as root, or with allow_devices=False for archives without devices"
    if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
        return "extract onto a filesystem with extended attributes (ext4, xfs, btrfs, tmpfs)"
    if exc.errno == errno.ENOSPC:
        return "free some space (`df -h`) and try again"
    return "check the destination directory and try again"


def extract(
    archive: str | os.PathLike[str] | BinaryIO,
    dest: str | os.PathLike[str],
    *,
    allow_devices: bool = False,
    on_member: MemberHook | None = None,
    same_owner: bool | None = None,
    validate_first: bool = True,
) -> ExtractReport:
    """Extract ``archive`` into the existing directory ``dest``, member by member, safely.

    Every member passes the :class:`Policy` (no absolute paths, no ``..``, nothing through a
    symlink, hard links only to the archive's own files, devices only with ``allow_devices``)
    and is written by :class:`SafeRoot`. With ``validate_first`` (and a seekable archive) the
    whole archive is checked before the first write; a stream is checked as it goes, so
    extract it into a fresh directory (see :func:`extract_new`). ``on_member`` may intercept
    members (see :data:`MemberHook`). Owners are kept when ``same_owner`` (default: when root).
    Duplicate entries: the later one wins, as with GNU tar.
    """
    if same_owner is None:
        same_owner = os.geteuid() == 0
    stream = not isinstance(archive, str | os.PathLike) and not _seekable(archive)
    with open_archive(archive) as tar, SafeRoot(dest) as root:
        job = Extraction(root, Policy(allow_devices=allow_devices), same_owner)
        if validate_first and not stream:
            # Headers only: tarfile keeps the members it has read, so this is not a 2nd pass.
            members: list[tarfile.TarInfo] | tarfile.TarFile = _checked(
                tar, Policy(allow_devices=allow_devices)
            )
        else:
            members = tar
        for member in members:
            job.add(tar, member, on_member)
        job.finish()
        return job.report


@contextlib.contextmanager
def staging(dest: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Build a directory atomically: yield a temporary directory beside ``dest``, then rename.

    On success the temporary directory becomes ``dest`` (an old ``dest`` is replaced only with
    ``replace``); on any failure it is removed and ``dest`` is exactly as before. Being beside
    ``dest`` keeps it on the same filesystem, where rename(2) is atomic.
    """
    dest = Path(os.path.abspath(dest))
    check_destination(dest, replace=replace)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.kit-new-", dir=dest.parent))
    try:
        os.chmod(temp, 0o755)  # mkdtemp makes it private; a root filesystem's / is 0755
        yield temp
        _swap_into_place(temp, dest, replace=replace)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def check_destination(dest: Path, *, replace: bool) -> None:
    """Refuse a destination that is not an empty (or absent) directory, unless ``replace``."""
    if dest.is_symlink():
        raise KitError(
            f"{dest} is a symlink",
            cause="kit builds a directory in its place and will not guess which one you mean",
            fix=f"give the real path ({os.path.realpath(dest)}) or remove the link",
        )
    if not dest.exists():
        return
    if not dest.is_dir():
        raise KitError(
            f"{dest} exists and is not a directory",
            fix="choose another destination, or remove that file",
        )
    if any(dest.iterdir()) and not replace:
        raise KitError(
            f"{dest} already exists and is not empty",
            cause="kit does not overwrite a directory unless asked to",
            fix="add --force to replace it (replace=True from Python), or choose another "
            "destination",
        )
    _refuse_if_mounted(dest)


def _refuse_if_mounted(dest: Path) -> None:
    # Removing a tree with something mounted in it (a running container's /proc, a volume)
    # would delete files of *that* filesystem: the host's own data, for a bind mount.
    from kit import mounts

    inside = [
        m.mount_point
        for m in mounts.read()
        if Path(m.mount_point) == dest or Path(m.mount_point).is_relative_to(dest)
    ]
    if inside:
        raise KitError(
            f"{dest} is in use: {', '.join(sorted(inside))} is mounted inside it",
            cause="replacing it would delete files on the mounted filesystems too",
            fix="stop the containers using it (`kit ps`), or unmount those first",
        )


def _swap_into_place(temp: Path, dest: Path, *, replace: bool) -> None:
    if not dest.exists():
        try:
            os.rename(temp, dest)
        except OSError as exc:
            raise KitError(
                f"cannot move the new tree into place at {dest}",
                errno=exc.errno,
                cause="something else created it meanwhile",
                fix="try again, or choose another destination",
            ) from None
        return
    check_destination(dest, replace=replace)  # it may have changed while we built
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.kit-old-", dir=dest.parent))
    os.rename(dest, old / "tree")
    try:
        os.rename(temp, dest)
    except OSError:
        os.rename(old / "tree", dest)  # put the old one back: lose nothing
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old)


def extract_new(
    archive: str | os.PathLike[str] | BinaryIO,
    dest: str | os.PathLike[str],
    *,
    allow_devices: bool = False,
    replace: bool = False,
    on_member: MemberHook | None = None,
) -> ExtractReport:
    """Extract into a new directory ``dest`` atomically: all of it, or nothing at all."""
    with staging(dest, replace=replace) as temp:
        return extract(archive, temp, allow_devices=allow_devices, on_member=on_member)
