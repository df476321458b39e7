"""Moving images in and out as files: ``kit import`` and ``kit save``.

Two archive formats come in:

* an **OCI layout** (a tar of ``oci-layout``, ``index.json`` and ``blobs/``), as written by
  ``kit save``, ``skopeo copy ... oci-archive:``, umoci, ``podman save --format oci-archive``;
* a **docker save** archive (``manifest.json`` naming each image's config and layer tars,
  with ``RepoTags``). Recent Docker writes both at once; the OCI index is preferred then.

Every blob is hashed as it is copied into the store and refused if it does not match its
name; layer tars are unpacked (and checked by :mod:`kit.image.layer`) before the image is
tagged. If anything fails, the blobs this import added are removed again and no tag
changes: the store is as it was.

``kit save`` writes an OCI layout, as a directory or a tar, with the image's tag in
``index.json`` (``org.opencontainers.image.ref.name``) so ``skopeo copy oci:DIR:TAG`` and
``umoci unpack --image DIR:TAG`` find it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kit.errors import KitError
from kit.image import media
from kit.image import reference as references
from kit.image.digest import hex_of
from kit.image.documents import REF_NAME, Descriptor, Index, Manifest, canonical, parse_json
from kit.image.image import Image, Progress, select_platform
from kit.image.store import LAYOUT_VERSION, Store

CONTAINERD_NAME = "io.containerd.image.name"


class _Archive:
    """Random access to the members of an image tar, refusing unsafe member names."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise KitError(
                f"{path} is not a tar archive kit can read",
                cause=str(exc),
                fix="give a file made by `kit save`, `docker save` or `skopeo copy oci-archive:`",
            ) from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in self.tar.getmembers():
            name = posixpath.normpath(member.name)
            if ".." in member.name.split("/") or member.name.startswith("/"):
                raise KitError(
                    f"refusing archive member {member.name!r} in {path}",
                    cause="its name climbs out of the archive",
                    fix="this archive is malformed or hostile: do not use it",
                )
            if name in self.members and member.isfile():
                raise KitError(
                    f"archive member {member.name!r} appears twice in {path}",
                    cause="which copy is meant is ambiguous",
                    fix="re-create the archive",
                )
            self.members[name] = member

    def close(self) -> None:
        self.tar.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(posixpath.normpath(name))
        if member is None or not member.isfile():
            raise KitError(
                f"{self.path} has no file {name}",
                cause="the archive is incomplete: a document names content it does not hold",
                fix="re-create the archive",
            )
        handle = self.tar.extractfile(member)
        assert handle is not None
        return handle  # type: ignore[return-value]

    def read(self, name: str) -> bytes:
        return self.open(name).read()

    def blob(self, digest: str) -> str:
        return f"blobs/sha256/{hex_of(digest)}"


def import_archive(
    store: Store, path: str, *, name: str | None = None, progress: Progress | None = None
) -> list[Image]:
    """Import every image of a docker-save or OCI layout tar; returns them, tagged."""
    store.init()
    archive = _Archive(path)
    added: list[str] = []
    try:
        if archive.has("oci-layout") and archive.has("index.json"):
            found = _import_oci(store, archive, name, added)
        elif archive.has("manifest.json"):
            found = _import_docker(store, archive, added)
        else:
            raise KitError(
                f"{path} is neither an OCI layout nor a docker save archive",
                cause="it has no index.json + oci-layout, and no manifest.json",
                fix="make it with `kit save`, `docker save` or `skopeo copy ... oci-archive:FILE`",
            )
        images = []
        for manifest_desc, names in found:
            image = Image.load(store, manifest_desc)
            image.unpack(progress)
            images.append((image, names))
    except BaseException:
        store.remove_blobs(added)
        raise
    finally:
        archive.close()
    out = []
    for image, names in images:
        for tag in names:
            store.tag(tag, image.desc)
        out.append(Image.load(store, image.desc))
    return out


def _copy_blob(
    store: Store, archive: _Archive, desc: Descriptor, added: list[str], what: str
) -> None:
    if store.has_blob(desc.digest):
        return  # the store holds it already (verified when it is read)
    with archive.open(archive.blob(desc.digest)) as source:
        store.put_stream(source, desc.media_type, expect=desc.digest, size=desc.size, what=what)
    added.append(desc.digest)


def _name_for(desc: Descriptor, override: str | None, archive: _Archive) -> list[str]:
    if override:
        return [references.parse(override).name]
    full = desc.annotations.get(CONTAINERD_NAME)
    if full:
        return [references.parse(full).name]
    ref = desc.annotations.get(REF_NAME)
    if not ref:
        return []
    if ":" in ref or "/" in ref:
        return [references.parse(ref).name]
    stem = Path(archive.path).name.split(".")[0].lower() or "imported"
    return [references.parse(f"{stem}:{ref}").name]


def _import_oci(
    store: Store, archive: _Archive, name: str | None, added: list[str]
) -> list[tuple[Descriptor, list[str]]]:
    parse_json(archive.read("oci-layout"), what="oci-layout")
    index = Index.parse(archive.read("index.json"), what=f"{archive.path}: index.json")
    found: list[tuple[Descriptor, list[str]]] = []
    for entry in index.manifests:
        names = _name_for(entry, name, archive)
        desc = entry
        if desc.media_type in media.INDEXES:
            _copy_blob(store, archive, desc, added, "index")
            nested = Index.parse(
                store.read_blob(desc, what="index"), what=f"index {desc.digest[:19]}"
            )
            desc = select_platform(nested, what=f"index {desc.digest[:19]}")
        media.check(desc.media_type, media.MANIFESTS, what=f"{archive.path}: index.json entry")
        _copy_blob(store, archive, desc, added, "manifest")
        manifest = store.manifest(desc)
        _copy_blob(store, archive, manifest.config, added, "image config")
        for i, layer in enumerate(manifest.layers):
            _copy_blob(store, archive, layer, added, f"layer {i}")
        found.append((Descriptor(desc.media_type, desc.digest, desc.size), names))
    if not found:
        raise KitError(f"{archive.path} holds no images", fix="save an image into it first")
    return found


def _import_docker(
    store: Store, archive: _Archive, added: list[str]
) -> list[tuple[Descriptor, list[str]]]:
    entries = json.loads(archive.read("manifest.json") or b"null")
    if not isinstance(entries, list) or not entries:
        raise KitError(
            f"{archive.path}: manifest.json is not a list of images",
            fix="re-create the archive with `docker save`",
        )
    found = []
    for i, entry in enumerate(entries):
        where = f"{archive.path}: manifest.json entry {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise KitError(f"malformed {where}: it has no Config", fix="re-create the archive")
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise KitError(f"malformed {where}: it has no Layers list", fix="re-create the archive")
        config_bytes = archive.read(entry["Config"])
        config = parse_json(config_bytes, what=f"config {entry['Config']}")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise KitError(
                f"{where} lists {len(layers)} layers, its config {len(diff_ids)} diff ids",
                fix="re-create the archive",
            )
        config_desc = store.put_bytes(config_bytes, media.OCI_CONFIG)
        added.append(config_desc.digest)
        layer_descs = []
        for n, (layer_name, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
            with archive.open(layer_name) as source:
                head = source.read(2)
                kind = media.OCI_LAYER_GZIP if head == b"\x1f\x8b" else media.OCI_LAYER
                stream = _Prefixed(head, source)
                expect = diff_id if kind == media.OCI_LAYER else None
                desc = store.put_stream(
                    stream, kind, expect=expect, what=f"layer {n} ({layer_name})"
                )
            added.append(desc.digest)
            layer_descs.append(desc)
        manifest = Manifest(media.OCI_MANIFEST, config_desc, layer_descs)
        manifest_desc = store.put_json(manifest.to_dict(), media.OCI_MANIFEST)
        added.append(manifest_desc.digest)
        tags = [references.parse(t).name for t in entry.get("RepoTags") or [] if isinstance(t, str)]
        found.append((manifest_desc, tags))
    return found


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if self.head:
            data, self.head = self.head, b""
            if n < 0:
                return data + self.rest.read()
            return data + (self.rest.read(n - len(data)) if n > len(data) else b"")
        return self.rest.read(n)


# --- save ----------------------------------------------------------------------------------


def _layout_entries(image: Image, tag: str) -> Iterator[tuple[str, Descriptor | bytes]]:
    """(path, blob descriptor or bytes) for every file of an OCI layout holding ``image``."""
    yield "oci-layout", json.dumps(LAYOUT_VERSION).encode()
    ref = references.parse(tag)
    annotations = {REF_NAME: ref.tag or "latest", CONTAINERD_NAME: ref.name}
    entry = Descriptor(image.desc.media_type, image.desc.digest, image.desc.size, annotations)
    yield "index.json", canonical(Index([entry]).to_dict())
    yield f"blobs/sha256/{hex_of(image.desc.digest)}", image.desc
    yield f"blobs/sha256/{hex_of(image.config_desc.digest)}", image.config_desc
    for layer in image.manifest.layers:
        yield f"blobs/sha256/{hex_of(layer.digest)}", layer


def save(image: Image, dest: str, *, tag: str | None = None, as_tar: bool | None = None) -> str:
    """Write ``image`` as an OCI layout to ``dest`` (a directory, or a tar); return the kind."""
    name = tag or (image.names[0] if image.names else f"{image.short_id}:latest")
    tar = as_tar if as_tar is not None else dest.endswith(".tar") or os.path.isfile(dest)
    if tar:
        _save_tar(image, dest, name)
        return "tar"
    _save_dir(image, Path(dest), name)
    return "directory"


def _copy_verified(image: Image, desc: Descriptor, out: BinaryIO) -> None:
    reader = image.store.open_blob(desc)
    try:
        while chunk := reader.read(1 << 20):
            out.write(chunk)
        reader.verify(desc.digest, desc.size)
    finally:
        reader.raw.close()


def _save_dir(image: Image, dest: Path, name: str) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise KitError(
            f"{dest} exists and is not empty", fix="choose a new directory, or remove that one"
        )
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for path, content in _layout_entries(image, name):
        target = dest / path
        temp = target.with_name(f".{target.name}.tmp")
        with open(temp, "wb") as out:
            if isinstance(content, bytes):
                out.write(content)
            else:
                _copy_verified(image, content, out)
        os.replace(temp, target)


def _save_tar(image: Image, dest: str, name: str) -> None:
    temp = f"{dest}.kit-tmp"
    try:
        with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
            for directory in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for path, content in _layout_entries(image, name):
                info = tarfile.TarInfo(path)
                info.mode = 0o644
                if isinstance(content, bytes):
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
                else:
                    info.size = content.size
                    reader = image.store.open_blob(content)
                    try:
                        tar.addfile(info, reader)  # type: ignore[arg-type]
                        reader.verify(content.digest, content.size)
                    finally:
                        reader.raw.close()
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def describe(images: list[Image]) -> list[dict[str, Any]]:
    """A JSON-ready summary of imported images."""
    return [{"id": i.id, "names": i.names, "layers": len(i.chain_ids)} for i in images]
