"""``kit cp``: copy files between a container and the host, as ``docker cp`` does.

A container path is looked up with ``openat2(RESOLVE_IN_ROOT)`` relative to the container's
root directory fd (see :mod:`kit.runtime.rootview`): the *kernel* resolves ``..`` and absolute
symlinks against that root, so ``/etc -> /host-etc`` in a hostile image means the container's
``/host-etc``, never the host's. ``RESOLVE_NO_MAGICLINKS`` also refuses ``/proc/self/root``-like
links, which would jump to another process's root. Every step below the resolved directory is
``O_NOFOLLOW``: symlinks are copied as symlinks, never followed, on either side.

Rules (Docker's):

* ``cp CONTAINER:SRC DEST``: into DEST if it is a directory, else as DEST. A directory is
  copied recursively; ``SRC/.`` copies its contents. ``DEST`` ``-`` writes a tar stream.
* ``cp SRC CONTAINER:DEST``: the same, inside the container. New files belong to the
  container's root user (on the host: the id its user namespace maps root to).
* Modes and times are kept. Two things are not, on purpose: **setuid/setgid bits** of files
  copied *out* (a setuid-root program from an image must not become one on the host), and
  **device nodes** in either direction (a node is a key to the device it names; a container
  could plant ``/x`` as the host's disk).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from dataclasses import dataclass

from kit.errors import KitError
from kit.linux.flags import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS
from kit.linux.fs import openat2
from kit.runtime.rootview import RootView, open_root
from kit.runtime.state import ContainerState

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

#: Kernel filesystems a recursive copy out of a running container does not descend into.
PSEUDO_FILESYSTEMS = frozenset(
    {
        "proc",
        "sysfs",
        "devpts",
        "mqueue",
        "cgroup",
        "cgroup2",
        "securityfs",
        "debugfs",
        "tracefs",
        "bpf",
        "configfs",
        "fusectl",
        "pstore",
        "binfmt_misc",
    }
)


@dataclass
class CopyStats:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    skipped: int = 0
    bytes: int = 0


def _split(container_path: str) -> tuple[str, str, bool]:
    """(parent, name, contents_only) of a container path; name "" means the root itself."""
    contents_only = container_path.endswith("/.")
    path = container_path[:-2] if contents_only else container_path
    path = "/" + path.strip("/")
    parent, _, name = path.rpartition("/")
    return parent or "/", name, contents_only


def resolve_dir(view: RootView, path: str) -> int:
    """An O_PATH fd of directory ``path`` inside the container (kernel-confined lookup)."""
    try:
        return openat2(view.fd, path, _PATH_DIR, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    except KitError as error:
        raise KitError(
            f"no directory {path} in the container",
            errno=error.errno,
            cause="the path (resolved inside the container's root) does not exist or is "
            "not a directory",
            fix="check the path with `kit exec CONTAINER ls`",
        ) from None


def _skip_set(view: RootView) -> frozenset[str]:
    """Mount points of kernel filesystems, relative to the root (running containers)."""
    if view.kind != "proc-root":
        return frozenset()
    from kit import mounts

    return frozenset(
        m.mount_point.strip("/")
        for m in mounts.read(view.pid)
        if m.fstype in PSEUDO_FILESYSTEMS and m.mount_point != "/"
    )


# --- out of the container ---------------------------------------------------------------------


def copy_out(record: ContainerState, source: str, dest: str) -> CopyStats:
    """``kit cp CONTAINER:SOURCE DEST``."""
    with open_root(record, whole_tree=True) as view:
        return copy_out_of(view, source, dest)


def copy_out_of(view: RootView, source: str, dest: str) -> CopyStats:
    """Copy ``source`` (a path inside the root ``view``) to the host path ``dest``."""
    parent, name, contents_only = _split(source)
    parent_fd = resolve_dir(view, parent)
    try:
        if name:
            _lstat(parent_fd, name, source)
        skip = _skip_set(view)
        base = (parent.strip("/") + "/" + name).strip("/")
        if dest == "-":
            return _tar_out(view, parent_fd, name, skip, base)
        return _copy_out(parent_fd, name, dest, contents_only, skip, base)
    finally:
        os.close(parent_fd)


def _lstat(dir_fd: int, name: str, shown: str) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise KitError(
            f"no such file in the container: {shown}",
            fix="check the path with `kit exec CONTAINER ls`",
        ) from None


def _tar_out(
    view: RootView, parent_fd: int, name: str, skip: frozenset[str], base: str
) -> CopyStats:
    """A tar stream of SOURCE on stdout (``kit cp web:/etc - | tar -t``), owners as the
    container sees them."""
    from kit.runtime.export import TarStream, add_entry, add_tree

    out = sys.stdout.buffer
    tar = TarStream(out)
    links: dict[tuple[int, int], str] = {}
    label = name or "."
    if name:
        add_entry(tar, parent_fd, name, label, links, view.owners)
    st = os.stat(name or ".", dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name or ".", _DIR, dir_fd=parent_fd)
        try:
            # The skip set is relative to the root; make it relative to SOURCE.
            inner = (
                frozenset(p[len(base) + 1 :] for p in skip if p.startswith(base + "/"))
                if base
                else skip
            )
            prefix = label.rstrip("/") + "/" if name else ""
            add_tree(tar, fd, owners=view.owners, skip=inner, prefix=prefix)
        finally:
            os.close(fd)
    tar.close()
    return CopyStats(files=tar.stats.files, bytes=tar.stats.bytes)


def _copy_out(
    parent_fd: int,
    name: str,
    dest: str,
    contents_only: bool,
    skip: frozenset[str],
    base: str,
) -> CopyStats:
    stats = CopyStats()
    st = os.stat(name or ".", dir_fd=parent_fd, follow_symlinks=False)
    is_dir = stat.S_ISDIR(st.st_mode)
    if contents_only and not is_dir:
        raise KitError(f"{name}/. names the contents of a directory, but {name} is not one")
    dest_is_dir = os.path.isdir(dest) and not os.path.islink(dest)
    if dest_is_dir and not contents_only:
        target_parent, target_name = dest, name or "root"  # into the existing directory
    else:  # as DEST itself (SRC/. always: its contents become DEST's)
        target_parent, target_name = os.path.split(os.path.abspath(dest))
    try:
        host_parent = os.open(target_parent, _DIR)
    except OSError as error:
        raise KitError(
            f"cannot copy to {dest}",
            errno=error.errno,
            cause=f"{target_parent} is not an existing directory",
            fix="create the destination's parent directory first",
        ) from None
    try:
        _copy_entry(
            parent_fd,
            name or ".",
            host_parent,
            target_name,
            stats,
            strip_setid=True,
            owner=None,
            skip=skip,
            here=base,
        )
    finally:
        os.close(host_parent)
    return stats


# --- into the container -----------------------------------------------------------------------


def copy_in(record: ContainerState, source: str, dest: str) -> CopyStats:
    """``kit cp SOURCE CONTAINER:DEST``."""
    if source == "-":
        raise KitError(
            "kit cp - CONTAINER:DEST (a tar stream from stdin) is not supported",
            fix="extract the archive on the host first, then copy the directory in",
            exit_code=2,
        )
    if not os.path.lexists(source):
        raise KitError(f"no such file on the host: {source}")
    with open_root(record, whole_tree=True) as view:
        return copy_into(view, source, dest)


def copy_into(view: RootView, source: str, dest: str) -> CopyStats:
    """Copy the host path ``source`` to ``dest``, a path inside the root ``view``."""
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        raise KitError(f"no such file on the host: {source}") from None
    contents_only = source.endswith("/.")
    host_parent_path = os.path.dirname(os.path.abspath(source.rstrip("/.") or "/"))
    host_name = os.path.basename(os.path.abspath(source))
    if contents_only:
        host_parent_path, host_name = os.path.abspath(source[:-2]), "."
    stats = CopyStats()
    owner = (view.root_uid, view.root_gid)
    dest_parent, dest_name, _ = _split(dest)
    dir_fd = _existing_dir(view, dest)
    if dir_fd is not None and not contents_only:
        target_fd, target_name = dir_fd, host_name  # into the existing directory
    elif dir_fd is not None and contents_only:
        os.close(dir_fd)
        target_fd, target_name = resolve_dir(view, dest_parent), dest_name
    else:
        if dest.endswith("/") and not stat.S_ISDIR(st.st_mode):
            raise KitError(f"{dest} does not exist in the container, and ends with /")
        target_fd, target_name = resolve_dir(view, dest_parent), dest_name
    host_fd = os.open(host_parent_path, _DIR)
    try:
        _copy_entry(
            host_fd,
            host_name,
            target_fd,
            target_name or host_name,
            stats,
            strip_setid=False,
            owner=owner,
            skip=frozenset(),
            here="",
        )
    except OSError as error:  # KitError is no OSError: it passes through untouched
        raise _explain_write(error, dest) from None
    finally:
        os.close(host_fd)
        os.close(target_fd)
    return stats


def _existing_dir(view: RootView, path: str) -> int | None:
    """:func:`resolve_dir`, or None when there is no such directory."""
    try:
        return resolve_dir(view, path)
    except KitError:
        return None


def _explain_write(error: OSError, dest: str) -> KitError:
    if error.errno == errno.EROFS:
        return KitError(
            f"cannot write {dest} in the container",
            errno=error.errno,
            cause="that part of the container's filesystem is mounted read-only "
            "(--read-only, or a read-only volume)",
            fix="copy into a writable place such as /tmp",
        )
    return KitError(f"cannot write {dest} in the container", errno=error.errno)


# --- the copy itself (fd to fd, never following a symlink) --------------------------------------


def _copy_entry(
    src_dir: int,
    src_name: str,
    dst_dir: int,
    dst_name: str,
    stats: CopyStats,
    *,
    strip_setid: bool,
    owner: tuple[int, int] | None,
    skip: frozenset[str],
    here: str,
) -> None:
    st = os.stat(src_name, dir_fd=src_dir, follow_symlinks=False)
    mode = stat.S_IMODE(st.st_mode)
    if strip_setid:
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    if stat.S_ISDIR(st.st_mode):
        _copy_dir(
            src_dir, src_name, dst_dir, dst_name, st, mode, stats, strip_setid, owner, skip, here
        )
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src_dir, src_name, dst_dir, dst_name, st, mode, stats)
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(src_name, dir_fd=src_dir)
        _clear(dst_dir, dst_name)
        os.symlink(target, dst_name, dir_fd=dst_dir)
        stats.symlinks += 1
    elif stat.S_ISFIFO(st.st_mode):
        _clear(dst_dir, dst_name)
        os.mkfifo(dst_name, mode, dir_fd=dst_dir)
    else:
        stats.skipped += 1  # devices and sockets (see the module docstring)
        return
    if owner is not None:
        with contextlib.suppress(OSError):
            os.chown(dst_name, owner[0], owner[1], dir_fd=dst_dir, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            os.utime(
                dst_name,
                ns=(st.st_atime_ns, st.st_mtime_ns),
                dir_fd=dst_dir,
                follow_symlinks=False,
            )


def _clear(dir_fd: int, name: str) -> None:
    """Remove a non-directory in the way (never following it)."""
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise KitError(f"cannot overwrite the directory {name} with a non-directory")
        os.unlink(name, dir_fd=dir_fd)


def _copy_file(
    src_dir: int,
    src_name: str,
    dst_dir: int,
    dst_name: str,
    st: os.stat_result,
    mode: int,
    stats: CopyStats,
) -> None:
    src = os.open(
        src_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir
    )
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            return  # swapped while we looked
        _clear(dst_dir, dst_name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        dst = os.open(dst_name, flags, 0o600, dir_fd=dst_dir)
        try:
            offset = 0
            while True:
                n = os.sendfile(dst, src, offset, 1 << 30)
                if n == 0:
                    break
                offset += n
            os.fchmod(dst, mode)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    stats.files += 1
    stats.bytes += st.st_size


def _copy_dir(
    src_dir: int,
    src_name: str,
    dst_dir: int,
    dst_name: str,
    st: os.stat_result,
    mode: int,
    stats: CopyStats,
    strip_setid: bool,
    owner: tuple[int, int] | None,
    skip: frozenset[str],
    here: str,
) -> None:
    src = os.open(src_name, _DIR, dir_fd=src_dir)
    try:
        try:
            os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
        except FileExistsError:
            existing = os.stat(dst_name, dir_fd=dst_dir, follow_symlinks=False)
            if not stat.S_ISDIR(existing.st_mode):
                raise KitError(f"cannot copy a directory over the file {dst_name}") from None
        dst = os.open(dst_name, _DIR, dir_fd=dst_dir)
        try:
            stats.directories += 1
            if here in skip:
                return  # a kernel filesystem's mount point: keep it empty
            for name in sorted(os.listdir(src)):
                inner = f"{here}/{name}".strip("/")
                _copy_entry(
                    src,
                    name,
                    dst,
                    name,
                    stats,
                    strip_setid=strip_setid,
                    owner=owner,
                    skip=skip,
                    here=inner,
                )
            os.fchmod(dst, mode)
        finally:
            os.close(dst)
    finally:
        os.close(src)
