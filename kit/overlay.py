"""overlayfs: stacking read-only layers under one writable directory, and its whiteouts.

An overlay mount shows several directories as one tree::

    lowerdir   the image's layers, read-only; the first named is on top
    upperdir   the container's writable layer: every change lands here
    workdir    overlayfs's scratch space (same filesystem as upperdir)

Reading a file finds the topmost layer that has it. Writing a file that comes from a lower
layer first *copies it up* into upperdir. Deleting one cannot touch the lower layer, so
overlayfs records the deletion in upperdir as a **whiteout**: a character device with device
number 0/0 named like the deleted file. A directory that replaces a lower one entirely is
marked **opaque** with the extended attribute ``trusted.overlay.opaque=y`` (``user.overlay.
opaque`` when the overlay is mounted with ``userxattr``, as it must be inside a user
namespace, where ``trusted.*`` is out of reach). Image layers store the same two facts as
files (``.wh.NAME`` and ``.wh..wh..opq``); :mod:`kit.image.layer` translates between them.

**Many layers.** mount(2) takes all options as one string of at most one page (4096 bytes):
with long layer paths that fits a few dozen layers (Docker stops at 128 using short link
names). The new mount API sets options one at a time, and since Linux 6.8 overlay accepts
``lowerdir+`` once per layer, so the limit becomes overlay's own stack depth (500). Where the
kernel lacks it, kit passes short relative names (``l/ab3x``) from inside the layers
directory instead, which fits 500 layers in a page too.

**User namespaces.** Root of a user namespace may mount overlayfs (Linux 5.11) but may not
touch ``trusted.*`` xattrs, so rootless kit mounts with ``userxattr`` and unpacks its layers
with ``user.overlay.opaque``. Whiteouts need no privilege: anyone may create a character
device 0/0 (Linux 5.8). Root's containers with ``--userns`` get an overlay built outside the
namespace instead, detached, with idmapped layers (:func:`detached_overlay`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from kit.errors import KitError
from kit.linux import newmount
from kit.linux.mount import mount

#: overlayfs's own limit on the number of lower layers (FILESYSTEM_MAX_STACK_DEPTH is 2, but
#: the lower stack of one overlay is capped at OVL_MAX_STACK = 500).
MAX_LAYERS = 500
PAGE = 4096

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def opaque_xattr(userxattr: bool = False) -> str:
    """The xattr that marks an opaque directory (``user.*`` in a user namespace)."""
    return "user.overlay.opaque" if userxattr else "trusted.overlay.opaque"


def overlay_xattr_prefixes() -> tuple[str, ...]:
    """xattrs overlayfs keeps for itself; they never belong in an image layer."""
    return ("trusted.overlay.", "user.overlay.")


def is_whiteout(st: os.stat_result) -> bool:
    """A character device 0/0 is overlayfs's mark for "deleted here"."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | os.PathLike[str], userxattr: bool | None = None) -> bool:
    """Whether a directory of an upper or lower layer is marked opaque."""
    names = (
        [opaque_xattr(userxattr)]
        if userxattr is not None
        else [opaque_xattr(False), opaque_xattr(True)]
    )
    for name in names:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


# --- mounting -------------------------------------------------------------------------------


_lowerdir_plus_works: bool | None = None


def mount_overlay(
    target: str,
    lowers: Sequence[str],
    upper: str | None = None,
    work: str | None = None,
    *,
    userxattr: bool = False,
    method: str = "auto",
) -> str:
    """Mount an overlay of ``lowers`` (top first) and ``upper`` at ``target``; return the method.

    ``method``: ``"lowerdir+"`` (new mount API, one fsconfig call per layer), ``"mount"``
    (mount(2) with one options string, using short link names when paths are too long), or
    ``"auto"``: the first where the kernel has it.
    """
    global _lowerdir_plus_works
    if not lowers:
        raise KitError("an overlay needs at least one lower layer", fix="give the image's layers")
    if len(lowers) > MAX_LAYERS:
        raise KitError(
            f"{len(lowers)} layers are more than overlayfs stacks ({MAX_LAYERS})",
            cause="the kernel refuses deeper lower stacks (OVL_MAX_STACK)",
            fix="squash some layers: rebuild the image with fewer filesystem-changing steps",
        )
    if (upper is None) != (work is None):
        raise KitError("an overlay's upperdir and workdir go together", fix="give both or neither")
    if method == "lowerdir+" or (method == "auto" and _lowerdir_plus_works is not False):
        try:
            _mount_new_api(target, lowers, upper, work, userxattr)
            _lowerdir_plus_works = True
            return "lowerdir+"
        except KitError as error:
            # EINVAL on "lowerdir+" itself: a kernel before 6.8. Anything else is real.
            if method != "auto" or not _lacks_lowerdir_plus(error):
                raise
            _lowerdir_plus_works = False
    _mount_classic(target, lowers, upper, work, userxattr)
    return "mount"


def _lacks_lowerdir_plus(error: KitError) -> bool:
    return error.errno == errno.EINVAL and "lowerdir+" in (error.cause or "") + error.what


def _mount_new_api(
    target: str, lowers: Sequence[str], upper: str | None, work: str | None, userxattr: bool
) -> None:
    mount_fd = detached_overlay(lowers, upper, work, userxattr=userxattr)
    try:
        newmount.attach(mount_fd, target, note=f"overlay of {len(lowers)} layers")
    finally:
        os.close(mount_fd)


def detached_overlay(
    lowers: Sequence[str],
    upper: str | None = None,
    work: str | None = None,
    *,
    userxattr: bool = False,
    idmap_userns: int | None = None,
) -> int:
    """Build an overlay with the new mount API and return it *detached* (attached nowhere).

    The mount belongs to no mount namespace until someone attaches it with move_mount(2):
    kit's init parent builds a user-namespaced container's overlay this way, with its host
    privileges, and the container process attaches it in its own mount namespace.

    ``idmap_userns``: a user namespace fd. Each lower layer is then given to overlayfs
    through an **idmapped mount** (open_tree + mount_setattr(MOUNT_ATTR_IDMAP)): its files
    keep their owners on disk, but are *seen* through that namespace's id map, so a file
    owned by uid 0 on disk appears owned by whatever host uid stands for the container's
    root. The upper and work directories are not idmapped: overlayfs creates its work
    files there with the mounter's (host root's) ids, which such a map cannot express
    (EOVERFLOW); the container's own files land there with their host ids instead.
    """
    fs_fd = newmount.fsopen("overlay")
    # The idmapped layers stay open until the superblock exists: closing the last fd of a
    # detached mount unmounts it, and overlayfs clones each layer's mount only at CREATE.
    layer_fds: list[int] = []
    try:
        if userxattr:
            newmount.set_flag(fs_fd, "userxattr")
        for lower in lowers:
            if idmap_userns is None:
                newmount.set_string(fs_fd, "lowerdir+", lower)
                continue
            layer_fds.append(idmapped(lower, idmap_userns))
            # A detached mount has no path of its own; /proc/self/fd/N names it while the fd
            # is open (Linux 6.13 also takes the fd itself, with FSCONFIG_SET_FD).
            newmount.set_string(fs_fd, "lowerdir+", f"/proc/self/fd/{layer_fds[-1]}")
        if upper is not None and work is not None:
            newmount.set_string(fs_fd, "upperdir", upper)
            newmount.set_string(fs_fd, "workdir", work)
        newmount.create(fs_fd)
        return newmount.fsmount(fs_fd)
    finally:
        os.close(fs_fd)
        for fd in layer_fds:
            os.close(fd)


def idmapped(path: str, userns_fd: int) -> int:
    """A detached, idmapped bind mount of ``path``: its owners seen through ``userns_fd``."""
    flags = newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC
    fd = newmount.open_tree(newmount.AT_FDCWD, path, flags)
    try:
        newmount.mount_setattr(
            fd,
            "",
            newmount.AT_EMPTY_PATH,
            attr_set=newmount.MOUNT_ATTR_IDMAP,
            userns_fd=userns_fd,
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _escape(path: str) -> str:
    # overlay splits lowerdir on ':' and the options on ','; a backslash escapes either.
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def _short_names(lowers: Sequence[str]) -> tuple[str, list[str]] | None:
    """If every lower is a store layer (``.../layers/HEX/diff`` with a ``link`` file), the
    layers directory and the relative short names (``l/ab3x``) to use from inside it."""
    base: Path | None = None
    names: list[str] = []
    for lower in lowers:
        layer = Path(lower).parent
        try:
            link = (layer / "link").read_text().strip()
        except OSError:
            return None
        if base is None:
            base = layer.parent
        elif layer.parent != base:
            return None
        names.append(f"l/{link}")
    return (str(base), names) if base is not None else None


def _mount_classic(
    target: str, lowers: Sequence[str], upper: str | None, work: str | None, userxattr: bool
) -> None:
    def options(lower_names: Sequence[str]) -> str:
        parts = ["lowerdir=" + ":".join(_escape(p) for p in lower_names)]
        if upper is not None and work is not None:
            parts += [f"upperdir={_escape(upper)}", f"workdir={_escape(work)}"]
        if userxattr:
            parts.append("userxattr")
        return ",".join(parts)

    data = options(lowers)
    if len(data) < PAGE:
        mount("overlay", target, "overlay", 0, data, note=f"overlay of {len(lowers)} layers")
        return
    short = _short_names(lowers)
    if short is None:
        raise KitError(
            f"the overlay options for {len(lowers)} layers are {len(data)} bytes, over the "
            f"{PAGE}-byte page mount(2) accepts",
            cause="this kernel has no lowerdir+ (Linux 6.8) and the layers have no short names",
            fix="use layers from kit's store, or a kernel with lowerdir+",
        )
    base, names = short
    # Relative lower paths are resolved against the caller's working directory at mount
    # time: stand in the layers directory, mount, and step back out.
    upper = os.path.abspath(upper) if upper else None
    work = os.path.abspath(work) if work else None
    target = os.path.abspath(target)
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(base)
        data = options(names)
        mount(
            "overlay",
            target,
            "overlay",
            0,
            data,
            note=f"overlay of {len(lowers)} short-named layers",
        )
    finally:
        os.fchdir(here)
        os.close(here)
