"""The image store: an OCI image layout under the kit root, plus unpacked layers beside it.

::

    KIT_ROOT/images/            an OCI image layout (umoci and skopeo read it as it is)
        oci-layout              {"imageLayoutVersion": "1.0.0"}
        index.json              every tagged image: a manifest descriptor named by
                                org.opencontainers.image.ref.name = "NAME:TAG"
        blobs/sha256/HEX        manifests, configs and layer tars, named by their digest
    KIT_ROOT/layers/CHAINHEX/   one unpacked layer, keyed by its chain id
        diff/                   its files, in overlayfs's form (whiteouts are char devices 0/0)
        link                    its short name, for mounts with many layers
    KIT_ROOT/layers/l/SHORT     -> ../CHAINHEX/diff

**A store belongs to one user.** Root's layers keep their files' owners and mark opaque
directories with ``trusted.overlay.opaque``. An ordinary user (rootless kit, in
``$XDG_DATA_HOME/kit``) may set neither: their layers' files all belong to them (the
container's root, once inside their user namespace) and opaque directories carry
``user.overlay.opaque``, the mark overlayfs reads when mounted with ``userxattr`` in a user
namespace. Whiteouts are the same for both (character devices 0/0: the kernel lets anyone
create those since Linux 5.8). The owner of ``layers/`` says whose store it is; used by
anyone else, it is refused with the reason (:meth:`Store.overlay_xattrs`).

Blobs are written to a temporary file while hashing and renamed into place only when the
digest matches: a blob file always holds exactly the bytes its name promises. Reads check
again (:meth:`Store.read_blob`, :meth:`Store.open_blob`), so a corrupted store is noticed,
not used. ``index.json`` is replaced atomically under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kit import paths
from kit.errors import KitError
from kit.image import digest as digests
from kit.image import media
from kit.image.documents import (
    REF_NAME,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    canonical,
)
from kit.removal import remove_tree
from kit.security.userns import host_root

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
#: What the init layer holds: mount points of the kernel filesystems and of the /etc files
#: the runtime binds in (hostname, hosts, resolv.conf).
INIT_DIRS = ("proc", "dev", "sys", "tmp", "etc")
INIT_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf")
#: Alphabet of short layer names: 4 characters, so 500 layers fit in one page of options.
_LINK_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class Store:
    """The image store of one kit root."""

    def __init__(self, root: Path | None = None) -> None:
        base = Path(root) if root is not None else paths.data_root()
        self.root = base / "images"
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = base / "layers"
        self.links = self.layers / "l"
        self.cache = base / "build-cache"

    # --- layout ----------------------------------------------------------------------------

    def init(self) -> Store:
        """Create the layout if it is not there yet (idempotent)."""
        if (self.root / "oci-layout").exists() and (self.root / "index.json").exists():
            return self
        paths.ensure(self.blobs, 0o755)
        paths.ensure(self.links, 0o755)
        with self.lock():
            if not (self.root / "oci-layout").exists():
                _write_atomic(self.root / "oci-layout", json.dumps(LAYOUT_VERSION).encode())
            if not (self.root / "index.json").exists():
                _write_atomic(self.root / "index.json", canonical(Index([]).to_dict()))
        self.overlay_xattrs()  # a new store is its creator's: record whose marks it holds
        return self

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock (index changes, removals, layer unpacking)."""
        paths.ensure(self.root, 0o755)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # --- blobs -----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digests.hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_bytes(self, data: bytes, media_type: str) -> Descriptor:
        """Store a blob from memory; returns its descriptor."""
        digest = digests.sha256_bytes(data)
        path = self.blob_path(digest)
        if not path.exists():
            self.init()
            _write_atomic(path, data)
        return Descriptor(media_type, digest, len(data))

    def put_json(self, value: dict[str, object], media_type: str) -> Descriptor:
        return self.put_bytes(canonical(value), media_type)

    def put_stream(
        self,
        stream: BinaryIO,
        media_type: str,
        *,
        expect: str | None = None,
        size: int | None = None,
        what: str = "blob",
    ) -> Descriptor:
        """Store a blob from a stream, hashing as it goes; verify ``expect`` if given."""
        self.init()
        reader = digests.HashingReader(stream)
        fd, temp = tempfile.mkstemp(prefix=".incoming-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(1 << 20):
                    out.write(chunk)
            if expect is not None:
                reader.verify(expect, size, what=what)
            os.chmod(temp, 0o644)
            os.replace(temp, self.blob_path(reader.digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return Descriptor(media_type, reader.digest, reader.size)

    def adopt(self, temp: Path, desc: Descriptor) -> Descriptor:
        """Move a blob file written elsewhere in the store (e.g. by a build) into place."""
        os.chmod(temp, 0o644)
        os.replace(temp, self.blob_path(desc.digest))
        return desc

    def remove_blobs(self, digests_added: list[str]) -> None:
        """Remove blobs an aborted import or pull added (no tag refers to them yet)."""
        for digest in digests_added:
            with contextlib.suppress(OSError):
                self.blob_path(digest).unlink()

    def read_blob(self, desc: Descriptor | str, *, what: str = "blob") -> bytes:
        """A blob's bytes, after checking they hash to its name (and size, when known)."""
        digest = desc if isinstance(desc, str) else desc.digest
        size = None if isinstance(desc, str) else desc.size
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise KitError(
                f"{what} {digest} is missing from the store",
                cause="the image refers to a blob that was never stored or was deleted",
                fix="pull, import or build the image again",
            ) from None
        if size is not None and len(data) != size:
            raise KitError(
                f"{what} {digest} has the wrong size: {len(data)} bytes, expected {size}",
                cause="the store's copy is truncated or the document lies about it",
                fix="remove the image (`kit rmi`) and fetch it again",
            )
        actual = digests.sha256_bytes(data)
        if actual != digest:
            raise KitError(
                f"{what} digest mismatch in the store: {digest} holds content hashing to {actual}",
                cause="the file was changed on disk after kit stored it",
                fix="remove the image (`kit rmi`) and fetch it again",
            )
        return data

    def open_blob(self, desc: Descriptor, *, what: str = "blob") -> digests.HashingReader:
        """A hashing stream over a blob; call ``.verify(desc.digest, desc.size)`` at the end."""
        try:
            handle = open(self.blob_path(desc.digest), "rb")  # noqa: SIM115 (caller closes)
        except FileNotFoundError:
            raise KitError(
                f"{what} {desc.digest} is missing from the store",
                fix="pull, import or build the image again",
            ) from None
        return digests.HashingReader(handle, name=desc.digest)

    # --- documents -------------------------------------------------------------------------

    def manifest(self, desc: Descriptor) -> Manifest:
        data = self.read_blob(desc, what="manifest")
        return Manifest.parse(data, what=f"manifest {desc.digest[:19]}", media_type=desc.media_type)

    def config(self, desc: Descriptor) -> ImageConfig:
        return ImageConfig.parse(
            self.read_blob(desc, what="image config"), what=f"config {desc.digest[:19]}"
        )

    def index(self) -> Index:
        self.init()
        return Index.parse((self.root / "index.json").read_bytes(), what=f"{self.root}/index.json")

    def _write_index(self, index: Index) -> None:
        _write_atomic(self.root / "index.json", canonical(index.to_dict()))

    def tags(self) -> dict[str, Descriptor]:
        """Every tagged image: ``NAME:TAG`` -> its manifest descriptor."""
        return {
            d.annotations[REF_NAME]: d for d in self.index().manifests if REF_NAME in d.annotations
        }

    def tag(self, name: str, manifest: Descriptor) -> None:
        """Point ``name`` (``NAME:TAG``) at a manifest, replacing an older image of that name."""
        media.check(manifest.media_type, media.MANIFESTS, what="a tagged image")
        entry = Descriptor(manifest.media_type, manifest.digest, manifest.size, {REF_NAME: name})
        with self.lock():
            index = self.index()
            index.manifests = [
                d for d in index.manifests if d.annotations.get(REF_NAME) != name
            ] + [entry]
            self._write_index(index)

    def untag(self, name: str) -> Descriptor:
        with self.lock():
            index = self.index()
            kept = [d for d in index.manifests if d.annotations.get(REF_NAME) != name]
            if len(kept) == len(index.manifests):
                raise KitError(f"no image named {name}", fix="list images with `kit images`")
            removed = next(d for d in index.manifests if d.annotations.get(REF_NAME) == name)
            index.manifests = kept
            self._write_index(index)
        return removed

    # --- whose layers ----------------------------------------------------------------------

    def overlay_xattrs(self) -> str:
        """``"trusted"`` or ``"user"``: how this store's layers mark opaque directories.

        A store is its owner's (the owner of ``layers/``): host root's layers use
        ``trusted``, an ordinary user's ``user`` (see the module docstring). Used by anyone
        else, it is refused: its marks would be wrong for their overlays.
        """
        paths.ensure(self.layers, 0o755)
        owner = os.stat(self.layers).st_uid
        recorded = "trusted" if owner == 0 else "user"
        if host_root() != (owner == 0) or (owner != 0 and owner != os.geteuid()):
            raise self._mismatch(recorded, owner)
        return recorded

    @property
    def userxattr(self) -> bool:
        """Whether overlays of these layers need ``userxattr`` (a rootless user's store)."""
        return self.overlay_xattrs() == "user"

    def _mismatch(self, recorded: str, owner: int) -> KitError:
        base = self.root.parent
        if recorded == "trusted":
            return KitError(
                f"the image store in {base} is root's: its layers mark opaque directories "
                "with trusted.overlay.opaque",
                cause="an ordinary user can neither set nor read trusted.* attributes, and "
                "overlayfs mounted in a user namespace (rootless mode) reads user.overlay.* "
                "marks instead, so those directories would show files they should hide",
                fix="use a store of your own: unset KIT_ROOT and drop --root (rootless kit keeps "
                "its images in $XDG_DATA_HOME/kit), then pull, import or build the image "
                "there; or run kit as root",
            )
        if host_root():
            return KitError(
                f"the image store in {base} belongs to an ordinary user (uid {owner}): its "
                "layers mark opaque directories with user.overlay.opaque",
                cause="root mounts overlays that read trusted.overlay.* marks, so those "
                "directories would show files they should hide, and root would write "
                "root-owned files into that user's store",
                fix="run kit as that user, or use root's own store (unset KIT_ROOT and drop "
                "--root) and pull, import or build the image there",
            )
        return KitError(
            f"the image store in {base} belongs to uid {owner}, not to you (uid {os.geteuid()})",
            cause="a rootless store's files all belong to its user, who is root in their "
            "containers; in anyone else's containers they would belong to nobody",
            fix="use a store of your own: unset KIT_ROOT and drop --root (rootless kit keeps "
            "its images in $XDG_DATA_HOME/kit)",
        )

    # --- unpacked layers -------------------------------------------------------------------

    def layer_path(self, chain_id: str) -> Path:
        """The directory of an unpacked layer (its files are in ``diff/``)."""
        return self.layers / digests.hex_of(chain_id)

    def diff_path(self, chain_id: str) -> Path:
        return self.layer_path(chain_id) / "diff"

    def has_layer(self, chain_id: str) -> bool:
        return (self.layer_path(chain_id) / "link").is_file()

    @contextlib.contextmanager
    def new_layer(self, chain_id: str) -> Iterator[Path]:
        """Build an unpacked layer atomically: fill the yielded ``diff`` directory.

        The layer appears (renamed into place, with its short link) only if the block
        finishes; on any error nothing of it remains. If another kit added the same layer
        meanwhile, ours is discarded: same chain id, same content.
        """
        paths.ensure(self.links, 0o755)
        self.overlay_xattrs()  # refuse to add a layer to another kind of user's store
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=self.layers))
        try:
            diff = staging / "diff"
            diff.mkdir(mode=0o755)
            yield diff
            with self.lock():
                final = self.layer_path(chain_id)
                if (final / "link").is_file():
                    remove_tree(staging)
                    return
                if final.exists():  # a half-made layer from a killed kit: replace it
                    remove_tree(final)
                link = self._new_link()
                (staging / "link").write_text(link)
                os.rename(staging, final)
                os.symlink(f"../{final.name}/diff", self.links / link)
        except BaseException:
            remove_tree(staging)
            raise

    def _new_link(self) -> str:
        while True:
            name = "".join(_LINK_ALPHABET[b % len(_LINK_ALPHABET)] for b in os.urandom(4))
            if not os.path.lexists(self.links / name):
                return name

    def init_layer(self) -> Path:
        """A tiny read-only layer of mount points (``/proc``, ``/dev``, ``/etc/hosts`` ...).

        It sits between an image's layers and a container's writable layer (Docker's "init"
        layer does the same): the runtime mounts kernel filesystems and its own /etc files on
        these paths, and since they already exist below, creating them never lands in the
        writable layer, so ``kit diff`` and ``kit commit`` never see them.
        """
        final = self.layers / "init" / "diff"
        self.overlay_xattrs()  # every container and build step comes here: check the owner
        if all((final / name).exists() for name in (*INIT_DIRS, *INIT_FILES)):
            return final
        paths.ensure(self.layers / "init", 0o755)
        staging = Path(tempfile.mkdtemp(prefix=".init-", dir=self.layers))
        try:
            os.chmod(staging, 0o755)
            for name in INIT_DIRS:
                (staging / name).mkdir(mode=0o755)
            for name in INIT_FILES:
                (staging / name).touch(mode=0o644)
            with self.lock():
                if final.exists():  # an older kit's init layer: keep it aside, use the new one
                    os.rename(final, Path(tempfile.mkdtemp(prefix=".old-", dir=self.layers)) / "d")
                os.rename(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not final.is_dir():
                raise
        return final

    # --- garbage collection ----------------------------------------------------------------

    def collect(self, in_use: set[str] | None = None) -> tuple[int, int]:
        """Remove blobs and unpacked layers no tagged image needs; (blobs, layers) removed.

        ``in_use`` holds chain ids that containers still run on: they are kept.
        """
        from kit.image.image import Image

        keep_blobs: set[str] = set()
        keep_layers: set[str] = set(in_use or ())
        with self.lock():
            for desc in self.index().manifests:
                image = Image.load(self, desc, find_names=False)
                keep_blobs |= {desc.digest, image.manifest.config.digest}
                keep_blobs |= {layer.digest for layer in image.manifest.layers}
                keep_layers |= set(image.chain_ids)
            removed_blobs = 0
            for blob in self.blobs.iterdir():
                if f"sha256:{blob.name}" not in keep_blobs and not blob.name.startswith("."):
                    blob.unlink()
                    removed_blobs += 1
            removed_layers = 0
            for layer in self.layers.iterdir():
                if layer.name in ("l", "init") or layer.name.startswith("."):
                    continue
                if f"sha256:{layer.name}" not in keep_layers:
                    link = layer / "link"
                    if link.is_file():
                        with contextlib.suppress(OSError):
                            os.unlink(self.links / link.read_text().strip())
                    remove_tree(layer)
                    removed_layers += 1
        return removed_blobs, removed_layers


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
    os.chmod(temp, 0o644)
    os.replace(temp, path)
