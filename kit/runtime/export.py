"""``kit export``: a container's root filesystem as a tar stream, like ``docker export``.

The root comes from :mod:`kit.runtime.rootview` (a detached mount or a clone of the container's
root mount: never /proc, /sys, /dev or volumes), and is walked entirely through file
descriptors: each directory is opened relative to its parent with ``O_NOFOLLOW``, each file
relative to its directory. No path is ever looked up from the host's ``/``, so a symlink in
the container (``etc -> /etc``) is stored as a symlink and never followed to a host file, and
a directory swapped for a symlink while a running container is exported makes the open fail
instead of leading elsewhere.

The tar is POSIX pax (long names, large files, extended attributes such as file capabilities
as ``SCHILY.xattr.*``, the way GNU tar and Docker store them). File contents go from the file
to the output with sendfile(2): the kernel copies the bytes, Python only writes headers.
Hard links are stored once and then as links, as ``tar -c`` does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from kit.errors import KitError
from kit.runtime.rootview import open_root
from kit.runtime.state import ContainerState

BLOCK = 512
_ZEROS = bytes(BLOCK * 2)

#: Host (uid, gid) -> the ids the archive records (the container's, through its id maps).
OwnerMap = Callable[[int, int], tuple[int, int]]

#: xattrs never exported: overlayfs's own bookkeeping, and SELinux labels of this host.
_SKIP_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")


@dataclass
class ExportStats:
    """What went into the archive."""

    entries: int = 0
    files: int = 0
    bytes: int = 0


def export(record: ContainerState, out: BinaryIO) -> ExportStats:
    """Write the container's root filesystem to ``out`` as a tar stream."""
    with open_root(record, whole_tree=False) as view:
        return write_tree(view.fd, out, owners=view.owners)


class TarStream:
    """Writes tar members to a file descriptor (headers by tarfile, data by sendfile)."""

    def __init__(self, out: BinaryIO) -> None:
        out.flush()
        self.fd = out.fileno()
        self.stats = ExportStats()

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def add(self, info: tarfile.TarInfo, source_fd: int | None = None) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.stats.entries += 1
        if source_fd is None or info.size == 0:
            return
        sent = 0
        while sent < info.size:
            try:
                n = os.sendfile(self.fd, source_fd, sent, info.size - sent)
            except OSError:  # an output sendfile cannot write to: copy by hand
                n = self._copy(source_fd, sent, info.size - sent)
            if n == 0:
                break  # the file shrank while we read it (a running container)
            sent += n
        if sent < info.size:
            # The header promised info.size bytes: keep the archive well-formed.
            self._write(bytes(info.size - sent))
        self._write(bytes(-info.size % BLOCK))
        self.stats.files += 1
        self.stats.bytes += info.size

    def _copy(self, source_fd: int, offset: int, count: int) -> int:
        data = os.pread(source_fd, min(count, 1 << 20), offset)
        self._write(data)
        return len(data)

    def close(self) -> None:
        self._write(_ZEROS)


def _info(name: str, st: os.stat_result, owners: OwnerMap | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = owners(st.st_uid, st.st_gid) if owners else (st.st_uid, st.st_gid)
    info.mtime = int(st.st_mtime)
    info.uname = info.gname = ""  # the host's user names mean nothing in the container
    return info


def _xattrs(fd: int) -> dict[str, str]:
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for name in os.listxattr(fd):
            if name.startswith(_SKIP_XATTRS):
                continue
            with contextlib.suppress(OSError):
                value = os.getxattr(fd, name)
                found[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return found


def _open_dir(name: str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def walk(root_fd: int, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, int, str]]:
    """Yield (archive name, parent dir fd, entry name) depth-first, parents before children.

    ``skip``: archive names (``proc``, ``sys``...) whose *contents* are left out.
    """
    top = _open_dir(".", root_fd)
    stack: list[tuple[int, str, Iterator[str]]] = [(top, "", iter(sorted(os.listdir(top))))]
    try:
        while stack:
            dir_fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dir_fd)
                stack.pop()
                continue
            path = prefix + name
            yield path, dir_fd, name
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and path not in skip:
                try:
                    child = _open_dir(name, dir_fd)
                except PermissionError as error:
                    raise _unreadable(dir_fd, name, "/" + path, error) from None
                except OSError:
                    continue  # replaced or removed meanwhile
                stack.append((child, path + "/", iter(sorted(os.listdir(child)))))
    finally:
        for dir_fd, _, _ in stack:
            os.close(dir_fd)


def write_tree(
    root_fd: int,
    out: BinaryIO,
    *,
    owners: OwnerMap | None = None,
    skip: frozenset[str] = frozenset(),
    prefix: str = "",
) -> ExportStats:
    """Archive everything below ``root_fd`` (names relative to it, plus ``prefix``)."""
    tar = TarStream(out)
    add_tree(tar, root_fd, owners=owners, skip=skip, prefix=prefix)
    tar.close()
    return tar.stats


def add_tree(
    tar: TarStream,
    root_fd: int,
    *,
    owners: OwnerMap | None = None,
    skip: frozenset[str] = frozenset(),
    prefix: str = "",
) -> None:
    """Add everything below ``root_fd`` to ``tar`` (see :func:`walk` for ``skip``)."""
    links: dict[tuple[int, int], str] = {}
    for path, dir_fd, name in walk(root_fd, skip):
        try:
            add_entry(tar, dir_fd, name, prefix + path, links, owners)
        except FileNotFoundError:
            continue  # removed while we walked (a running container)
        except PermissionError as error:
            raise _unreadable(dir_fd, name, "/" + path, error) from None


def _unreadable(dir_fd: int, name: str, shown: str, error: OSError) -> KitError:
    """Explain a file the caller may not read (rootless kit reads with the user's rights)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        owner = f"owned by uid {st.st_uid} on the host, mode {stat.S_IMODE(st.st_mode):04o}"
    except OSError:
        owner = "not readable"
    return KitError(
        f"cannot read {shown} in the container",
        errno=error.errno,
        cause=f"kit reads the container's files with your own permissions, and this one is "
        f"{owner}: not yours to read (an ordinary user cannot read another user's private "
        "files, in a container's root or anywhere else)",
        fix="run kit as the user who owns the container's files (root for a root "
        "filesystem that root built), or make the file readable",
    )


def add_entry(
    tar: TarStream,
    dir_fd: int,
    name: str,
    archive_name: str,
    links: dict[tuple[int, int], str],
    owners: OwnerMap | None = None,
) -> None:
    """One file system entry (not following a symlink) as a tar member."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    info = _info(archive_name, st, owners)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        info.name = archive_name.rstrip("/") + "/"
        with contextlib.suppress(OSError):
            fd = _open_dir(name, dir_fd)
            try:
                info.pax_headers = _xattrs(fd)
            finally:
                os.close(fd)
        tar.add(info)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type = tarfile.LNKTYPE
            info.linkname = links[key]
            tar.add(info)
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or now.st_ino != st.st_ino:
                return  # swapped for something else while we looked
            info.size = st.st_size
            info.pax_headers = _xattrs(fd)
            tar.add(info, fd)
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            links[key] = archive_name
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(name, dir_fd=dir_fd)
        tar.add(info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.add(info)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
        tar.add(info)
    # Sockets have no tar representation (tar -c skips them too).
