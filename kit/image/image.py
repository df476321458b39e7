"""An image as kit uses it: manifest + config + a stack of unpacked layers.

:func:`resolve` finds an image by name (``busybox``, ``busybox:1``, ``127.0.0.1:5000/x:y``) or
by id (the config digest, or a prefix of it, as ``kit images`` shows). :meth:`Image.unpack`
makes sure every layer is unpacked in the store; :meth:`Image.lower_dirs` lists them top
first, the order overlayfs wants.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.image import media
from kit.image import reference as references
from kit.image.digest import chain_ids
from kit.image.documents import Descriptor, ImageConfig, Index, Manifest
from kit.image.store import Store

#: Progress callback: (what, done, total) — e.g. ("unpack sha256:ab12", 3, 7).
Progress = Callable[[str, int, int], None]


@dataclass
class Image:
    """One image in the store."""

    store: Store
    desc: Descriptor
    manifest: Manifest
    config: ImageConfig
    config_desc: Descriptor
    chain_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store, desc: Descriptor, *, find_names: bool = True) -> Image:
        """Read and check an image's manifest and config (digests verified on read).

        ``find_names``: also read the index for the tags that name it (``names``); callers
        going through every tag already know them.
        """
        manifest = store.manifest(desc)
        config = store.config(manifest.config)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise KitError(
                f"image {desc.digest[:19]} is inconsistent: its manifest lists "
                f"{len(manifest.layers)} layers, its config {len(diff_ids)} diff ids",
                fix="rebuild or re-fetch the image",
            )
        names = (
            [name for name, d in store.tags().items() if d.digest == desc.digest]
            if find_names
            else []
        )
        return cls(store, desc, manifest, config, manifest.config, chain_ids(diff_ids), names)

    @property
    def id(self) -> str:
        """The image id: its config's digest (what Docker calls the image ID)."""
        return self.config_desc.digest

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    def is_unpacked(self) -> bool:
        return all(self.store.has_layer(chain) for chain in self.chain_ids)

    def unpack(self, progress: Progress | None = None, *, userxattr: bool | None = None) -> None:
        """Unpack every layer that is not in the store yet (bottom up; shared ones are reused).

        Opaque directories get the marks of the store's owner (``userxattr`` defaults to
        :attr:`Store.userxattr`: ``user.overlay.opaque`` in a rootless user's store).
        """
        from kit.image.layer import unpack_into_store

        if userxattr is None:
            userxattr = self.store.userxattr  # also refuses another kind of user's store
        total = len(self.chain_ids)
        for i, (layer, chain, diff_id) in enumerate(
            zip(self.manifest.layers, self.chain_ids, self.config.diff_ids, strict=True)
        ):
            if progress:
                progress(f"layer {layer.digest[7:19]}", i, total)
            if self.store.has_layer(chain):
                continue
            unpack_into_store(
                self.store,
                layer,
                chain,
                diff_id=diff_id,
                userxattr=bool(userxattr),
                what=f"layer {i} ({layer.digest[:19]})",
            )
        if progress:
            progress("layers", total, total)

    def lower_dirs(self) -> list[str]:
        """The unpacked layers' directories, top layer first (overlayfs's lowerdir order)."""
        return [str(self.store.diff_path(chain)) for chain in reversed(self.chain_ids)]

    def layer_dirs(self) -> list[Path]:
        """The unpacked layers' directories, bottom first."""
        return [self.store.diff_path(chain) for chain in self.chain_ids]


def default_platform() -> dict[str, str]:
    """This machine's platform in OCI terms (``linux``/``amd64``, ``arm64`` + ``v8``)."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    out = {"os": "linux", "architecture": arch}
    if arch == "arm64":
        out["variant"] = "v8"
    return out


def select_platform(index: Index, *, what: str, wanted: dict[str, str] | None = None) -> Descriptor:
    """The manifest of an index for this machine's platform (or ``wanted``)."""
    want = wanted or default_platform()
    candidates = [d for d in index.manifests if d.media_type in media.MANIFESTS]
    for desc in candidates:
        plat = desc.platform or {}
        if plat.get("os") == want["os"] and plat.get("architecture") == want["architecture"]:
            if "variant" in want and plat.get("variant") not in (None, want["variant"]):
                continue
            return desc
    if len(candidates) == 1 and not candidates[0].platform:
        return candidates[0]
    offered = ", ".join(
        f"{(d.platform or {}).get('os')}/{(d.platform or {}).get('architecture')}"
        for d in candidates
    )
    raise KitError(
        f"{what} has no image for {want['os']}/{want['architecture']}",
        cause=f"it offers: {offered or 'nothing'}",
        fix="choose another platform with --platform OS/ARCH, or another image",
    )


def new_config(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh image config (or a copy of ``base`` to build on)."""
    import copy

    if base is not None:
        return copy.deepcopy(base)
    plat = default_platform()
    return {
        "architecture": plat["architecture"],
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


def write_image(
    store: Store, config: dict[str, Any], layers: list[Descriptor], name: str | None = None
) -> Image:
    """Store a config and a manifest for ``layers``; tag it ``name`` if given."""
    if len(config["rootfs"]["diff_ids"]) != len(layers):
        raise KitError("internal: diff ids and layers differ in number")
    config_desc = store.put_json(config, media.OCI_CONFIG)
    manifest = Manifest(media.OCI_MANIFEST, config_desc, list(layers))
    manifest_desc = store.put_json(manifest.to_dict(), media.OCI_MANIFEST)
    if name is not None:
        store.tag(name, manifest_desc)
    return Image.load(store, manifest_desc)


def resolve(store: Store, text: str) -> Image:
    """The image named ``text`` (a name, a name:tag, an id or an id prefix)."""
    tags = store.tags()
    candidates = [text]
    with contextlib.suppress(KitError):
        candidates.append(references.parse(text).name)
    for name in candidates:
        if name in tags:
            return Image.load(store, tags[name])
    wanted = text.removeprefix("sha256:")
    if len(wanted) >= 4 and all(c in "0123456789abcdef" for c in wanted):
        found: dict[str, Descriptor] = {}
        for desc in tags.values():
            image = Image.load(store, desc, find_names=False)
            for digest in (image.id, desc.digest):
                if digest.removeprefix("sha256:").startswith(wanted):
                    found[desc.digest] = desc
        if len(found) == 1:
            return Image.load(store, next(iter(found.values())))
        if len(found) > 1:
            raise KitError(
                f"{text!r} matches {len(found)} images", fix="give more digits of the id"
            )
    raise KitError(
        f"no such image: {text}",
        fix="list images with `kit images`; get one with `kit pull`, `kit import` or `kit build`",
        exit_code=125,
    )


def list_images(store: Store) -> list[Image]:
    """Every tagged image (one entry per distinct manifest, with all its names)."""
    seen: dict[str, Image] = {}
    for name, desc in sorted(store.tags().items()):
        if desc.digest in seen:
            seen[desc.digest].names.append(name)
            continue
        image = Image.load(store, desc, find_names=False)
        image.names = [name]
        seen[desc.digest] = image
    return list(seen.values())
