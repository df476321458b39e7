"""Layer tars, both ways: unpacking into overlay form, and packing a directory into a tar.

**Unpacking** (:func:`unpack`) streams a blob through two hashes (the blob's digest, then,
after gunzip, the diff id of the plain tar) into :mod:`kit.tarsafe`, which refuses hostile
members (absolute paths, ``..``, writes through symlinks, hard links out, device nodes when
not root). A layer-specific hook on top of it:

* turns ``DIR/.wh.NAME`` into a whiteout for overlayfs (char device 0/0 named ``NAME``);
* turns ``DIR/.wh..wh..opq`` into ``DIR`` marked opaque (``trusted.overlay.opaque=y``);
* refuses a path that appears twice (a layer that says two things about one file is
  ambiguous, and a classic trick to smuggle content past a scanner).

Extended attributes of overlayfs's own (``trusted.overlay.*``, ``user.overlay.*``) are never
taken from a layer: only kit's translation of ``.wh.`` files sets them.

Unpacked by an ordinary user (rootless kit), a layer's files all belong to that user (who is
root inside their containers), opaque directories get ``user.overlay.opaque`` instead, and
extended attributes only root may set (``security.capability``, ``trusted.*``) are left out
and counted; whiteouts are the same character devices 0/0 (unprivileged since Linux 5.8).

Everything is written into a staging directory that becomes the layer only when both digests
match, so a bad layer leaves nothing in the store.

**Packing** (:func:`pack`) goes the other way for a build step or ``kit commit``: it walks an
overlay upper directory and writes a tar in the image format, turning whiteouts back into
``.wh.`` files and opaque directories into ``.wh..wh..opq`` entries.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kit import overlay, tarsafe
from kit.errors import KitError
from kit.image import media
from kit.image.digest import HashingReader
from kit.image.documents import Descriptor
from kit.security.userns import host_root

if TYPE_CHECKING:
    from kit.image.store import Store


class _LayerHook:
    """The ``on_member`` hook of tarsafe for image layers (whiteouts, duplicates)."""

    def __init__(self, userxattr: bool, what: str, *, privileged: bool = True) -> None:
        self.userxattr = userxattr
        self.what = what
        self.privileged = privileged
        self.seen: set[tuple[str, ...]] = set()  # paths this layer created
        self.whited: set[tuple[str, ...]] = set()  # paths this layer whited out
        self.whiteouts = 0
        self.opaques = 0
        self.dropped_xattrs = 0

    def __call__(self, member: tarfile.TarInfo, job: tarsafe.Extraction) -> tarfile.TarInfo | None:
        self._drop_xattrs(member)
        parts = job.policy.parts(member.name)
        if parts:
            if parts in self.seen:
                raise tarsafe.UnsafeMember(
                    member.name,
                    f"it appears twice in {self.what}; a layer must say one thing about each "
                    "path (which copy would win differs between tools)",
                    "rebuild the layer so each path appears once",
                )
            self.seen.add(parts)
        name = parts[-1] if parts else ""
        if name == overlay.OPAQUE_MARKER:
            directory = "/".join(parts[:-1])
            if directory:
                job.root.makedirs(directory)
            job.setxattr(directory or ".", overlay.opaque_xattr(self.userxattr), b"y")
            self.opaques += 1
            return None
        if name.startswith(overlay.WHITEOUT_PREFIX):
            hidden = name[len(overlay.WHITEOUT_PREFIX) :]
            if not hidden or hidden in (".", "..") or hidden.startswith(overlay.WHITEOUT_PREFIX):
                raise tarsafe.UnsafeMember(member.name, f"it is a whiteout of {hidden!r}")
            target = (*parts[:-1], hidden)
            if target in self.seen or target in self.whited:
                return None  # this layer itself re-creates the path: the whiteout is moot
            self.whited.add(target)
            if len(parts) > 1:
                job.root.makedirs("/".join(parts[:-1]))
            job.mknod("/".join(target), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.whiteouts += 1
            return None
        return member

    def _drop_xattrs(self, member: tarfile.TarInfo) -> None:
        """Leave out the extended attributes a layer may not set.

        * overlayfs's own marks (``trusted.overlay.*``, ``user.overlay.*``): an image says
          "opaque" with ``.wh..wh..opq``, and marks set directly could make the overlay
          redirect a lookup to another path or treat a file as a whiteout;
        * unpacked by an ordinary user, anything outside ``user.*``: the kernel lets only
          root set ``security.capability`` or ``trusted.*``.
        """
        for key in list(member.pax_headers):
            name = tarsafe.xattr_name(key)
            if name is None:
                continue
            if name.startswith(overlay.overlay_xattr_prefixes()) or not (
                self.privileged or name.startswith("user.")
            ):
                del member.pax_headers[key]
                self.dropped_xattrs += 1


@dataclass
class UnpackReport:
    """What unpacking one layer did."""

    diff_id: str
    files: int
    bytes: int
    whiteouts: int
    opaques: int
    #: Extended attributes left out because only root may set them (rootless unpacking).
    dropped_xattrs: int = 0


def unpack(
    stream: BinaryIO,
    desc: Descriptor,
    dest: Path,
    *,
    diff_id: str | None = None,
    userxattr: bool = False,
    what: str = "layer",
) -> UnpackReport:
    """Unpack a layer blob into the empty directory ``dest``, verifying both digests.

    ``stream`` gives the blob as stored (gzip or plain, per ``desc.media_type``). On any
    error the caller must discard ``dest`` (the store does: see ``Store.new_layer``).
    """
    media.check(desc.media_type, media.LAYERS, what=what)
    outer = HashingReader(stream, name=what)  # the blob as stored: its digest
    if media.is_gzip(desc.media_type):
        # The diff id is the digest of the tar itself, so hash again after gunzip.
        gz = gzip.GzipFile(fileobj=outer, mode="rb")  # type: ignore[arg-type]
        inner_reader = HashingReader(gz, name=what)  # type: ignore[arg-type]
    else:
        inner_reader = outer
    privileged = host_root()  # root of the host: owners, devices and every xattr kept
    hook = _LayerHook(userxattr, what, privileged=privileged)
    try:
        report = tarsafe.extract(
            _EndMarker(inner_reader),  # type: ignore[arg-type]
            dest,
            allow_devices=privileged,
            on_member=hook,
            validate_first=False,
        )
        inner_reader.drain()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise KitError(
            f"{what} {desc.digest[:19]} is not a complete gzip stream",
            cause=f"{exc} (a truncated download or a corrupted file)",
            fix="fetch or import the image again",
        ) from None
    except tarfile.TarError as exc:
        raise KitError(
            f"{what} {desc.digest[:19]} is not a valid tar archive",
            cause=str(exc),
            fix="fetch or import the image again",
        ) from None
    outer.verify(desc.digest, desc.size, what=what)
    actual_diff = inner_reader.digest
    if diff_id is not None and actual_diff != diff_id:
        raise KitError(
            f"{what} {desc.digest[:19]} does not match its diff id: the uncompressed tar hashes "
            f"to {actual_diff}, the image config says {diff_id}",
            cause="the config and the layer do not belong together",
            fix="fetch or import the image again from a source you trust",
        )
    return UnpackReport(
        actual_diff, report.files, report.bytes, hook.whiteouts, hook.opaques, hook.dropped_xattrs
    )


class _EndMarker:
    """Supply a missing end of a tar stream: padding of the last block and the zero blocks.

    Some writers (umoci 0.4's ``insert``) stop right after the last file's data. Go's tar
    reader accepts that, Python's refuses ("unexpected end of data"). The content is all
    there, so kit adds the zeros the format expects, *after* hashing: the diff id stays the
    hash of the bytes as written.
    """

    def __init__(self, reader: HashingReader) -> None:
        self.reader = reader
        self.name = reader.name
        self.total = 0
        self.tail: bytes | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if self.tail is None:
            data = self.reader.read(n)
            if data or n == 0:
                self.total += len(data)
                return data
            self.tail = bytes(-self.total % 512 + 1024)
        data, self.tail = (self.tail, b"") if n < 0 else (self.tail[:n], self.tail[n:])
        return data


# --- packing -------------------------------------------------------------------------------


class _HashingWriter:
    """A write-only stream that hashes and counts, passing bytes on to ``out``."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


@dataclass
class PackResult:
    """A packed layer: its blob descriptor (as written) and diff id."""

    desc: Descriptor
    diff_id: str


#: Turns the owner of a file on disk into the owner the layer records: ``(uid, gid) ->
#: (uid, gid)``. A container in a user namespace writes its files with host ids (its root is
#: the invoking user, nobody, or a subordinate uid); the image must say what it saw inside.
OwnerMap = Callable[[int, int], tuple[int, int]]


def unpack_into_store(
    store: Store,
    desc: Descriptor,
    chain_id: str,
    *,
    diff_id: str,
    userxattr: bool,
    what: str = "layer",
) -> None:
    """Unpack the stored blob ``desc`` as the store's layer ``chain_id`` (all of it, or none)."""
    reader = store.open_blob(desc, what=what)
    try:
        with store.new_layer(chain_id) as diff:
            unpack(reader.raw, desc, diff, diff_id=diff_id, userxattr=userxattr, what=what)
    finally:
        reader.raw.close()


def pack_into_store(store: Store, source: Path, *, owners: OwnerMap | None = None) -> PackResult:
    """:func:`pack` ``source`` straight into the store's blobs (a build step, a commit)."""
    fd, temp = tempfile.mkstemp(prefix=".pack-", dir=store.blobs)
    try:
        with os.fdopen(fd, "wb") as out:
            packed = pack(source, out, owners=owners)
        store.adopt(Path(temp), packed.desc)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return packed


def pack(
    source: Path,
    out: BinaryIO,
    *,
    compress: bool = True,
    userxattr: bool | None = None,
    owners: OwnerMap | None = None,
) -> PackResult:
    """Write the overlay-form directory ``source`` as a layer tar (gzip unless told) to ``out``.

    Deterministic: entries sorted by name, the gzip header without a timestamp, so the same
    tree gives the same digests (what makes a build cache hit reproducible). ``owners``
    translates the owners found on disk (see :data:`OwnerMap`); by default they are kept.
    """
    blob_hash = _HashingWriter(out)
    gz = gzip.GzipFile(fileobj=blob_hash, mode="wb", compresslevel=6, mtime=0) if compress else None  # type: ignore[arg-type]
    tar_hash = _HashingWriter(gz if gz is not None else blob_hash)  # type: ignore[arg-type]
    with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
        _add_tree(tar, source, userxattr, owners)
    if gz is not None:
        gz.close()
    kind = media.OCI_LAYER_GZIP if compress else media.OCI_LAYER
    return PackResult(Descriptor(kind, blob_hash.digest, blob_hash.size), tar_hash.digest)


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(overlay.overlay_xattr_prefixes()):
            continue  # overlayfs bookkeeping (opaque, origin, impure ...), not file content
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _add_tree(
    tar: tarfile.TarFile, source: Path, userxattr: bool | None, owners: OwnerMap | None
) -> None:
    links: dict[tuple[int, int], str] = {}
    stack: list[str] = [""]
    while stack:
        rel = stack.pop()
        directory = os.path.join(source, rel) if rel else str(source)
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
        subdirs: list[str] = []
        for name in names:
            path_rel = f"{rel}/{name}" if rel else name
            full = os.path.join(directory, name)
            st = os.lstat(full)
            if overlay.is_whiteout(st):
                info = tarfile.TarInfo(
                    f"{rel}/{overlay.WHITEOUT_PREFIX}{name}"
                    if rel
                    else f"{overlay.WHITEOUT_PREFIX}{name}"
                )
                info.mtime = int(st.st_mtime)
                tar.addfile(info)
                continue
            info = _info(path_rel, full, st, links)
            if owners is not None:
                info.uid, info.gid = owners(st.st_uid, st.st_gid)
            info.pax_headers = _xattrs(full)
            if info.isreg():
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
            if stat.S_ISDIR(st.st_mode):
                if overlay.is_opaque(full, userxattr):
                    marker = tarfile.TarInfo(f"{path_rel}/{overlay.OPAQUE_MARKER}")
                    marker.mtime = int(st.st_mtime)
                    tar.addfile(marker)
                subdirs.append(path_rel)
        stack.extend(reversed(subdirs))


def _info(
    name: str, full: str, st: os.stat_result, links: dict[tuple[int, int], str]
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    info.uname = info.gname = ""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type = tarfile.LNKTYPE
            info.linkname = links[key]
            return info
        if st.st_nlink > 1:
            links[key] = name
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        raise KitError(f"cannot put {full} in a layer", cause="sockets are not part of an image")
    return info
