"""The JSON documents of an image, parsed and checked before kit trusts them.

A malformed manifest must fail here, naming the document and the field, not later as a
KeyError deep in an extraction. kit keeps each document's exact bytes (its digest is the hash
of those bytes) and reads fields out of the parsed form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitError
from kit.image import digest as digests
from kit.image import media

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class Descriptor:
    """A pointer to content: its media type, digest and size (plus optional extras)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_dict(cls, data: object, *, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise _bad(where, "must be an object (a descriptor)")
        media_type = data.get("mediaType")
        if not isinstance(media_type, str):
            raise _bad(where, "has no mediaType")
        size = data.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _bad(where, f"has an invalid size {size!r}")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise _bad(where, "has annotations that are not an object")
        platform = data.get("platform")
        if platform is not None and not isinstance(platform, dict):
            raise _bad(where, "has a platform that is not an object")
        return cls(
            media_type,
            digests.check(data.get("digest"), what=f"digest in {where}"),
            size,
            {str(k): str(v) for k, v in annotations.items()},
            platform,
        )


def _bad(where: str, problem: str) -> KitError:
    return KitError(
        f"malformed {where}: it {problem}",
        cause="the document does not follow the OCI image specification",
        fix="rebuild or re-fetch the image; if it comes from a registry, report it there",
    )


def parse_json(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse a document; refuse invalid JSON or a non-object naming ``what``."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise KitError(
            f"{what} is not valid JSON{where}",
            cause=str(getattr(exc, "msg", exc)),
            fix="the file is corrupt or not an image document; rebuild or re-fetch the image",
        ) from None
    if not isinstance(value, dict):
        raise _bad(what, "is not a JSON object")
    return value


def canonical(value: dict[str, Any]) -> bytes:
    """How kit serialises the documents it writes (stable, so rebuilds give equal digests)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Manifest:
    """An image manifest: one config and the layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, data: bytes, *, what: str = "manifest", media_type: str | None = None
    ) -> Manifest:
        doc = parse_json(data, what=what)
        if doc.get("schemaVersion") != 2:
            raise _bad(what, f"has schemaVersion {doc.get('schemaVersion')!r}, not 2")
        kind = doc.get("mediaType") or media_type or media.OCI_MANIFEST
        media.check(kind, media.MANIFESTS, what=what)
        config = Descriptor.from_dict(doc.get("config"), where=f"{what} config")
        media.check(config.media_type, media.CONFIGS, what=f"the config of {what}")
        layers_raw = doc.get("layers")
        if not isinstance(layers_raw, list):
            raise _bad(what, "has no layers list")
        layers = [
            Descriptor.from_dict(item, where=f"{what} layer {i}")
            for i, item in enumerate(layers_raw)
        ]
        for i, layer in enumerate(layers):
            media.check(layer.media_type, media.LAYERS, what=f"layer {i} of {what}")
        return cls(kind, config, layers, dict(doc.get("annotations") or {}))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class Index:
    """An image index (or Docker manifest list): manifests, by platform or by tag."""

    manifests: list[Descriptor]
    media_type: str = media.OCI_INDEX
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, *, what: str = "index", media_type: str | None = None) -> Index:
        doc = parse_json(data, what=what)
        if doc.get("schemaVersion") != 2:
            raise _bad(what, f"has schemaVersion {doc.get('schemaVersion')!r}, not 2")
        kind = doc.get("mediaType") or media_type or media.OCI_INDEX
        media.check(kind, media.INDEXES, what=what)
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise _bad(what, "has no manifests list")
        manifests = [
            Descriptor.from_dict(item, where=f"{what} entry {i}") for i, item in enumerate(items)
        ]
        return cls(manifests, kind, dict(doc.get("annotations") or {}))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_dict() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class ImageConfig:
    """The image configuration: how to run it, its layers' diff ids, its history."""

    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes, *, what: str = "image config") -> ImageConfig:
        doc = parse_json(data, what=what)
        rootfs = doc.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise _bad(what, "has no rootfs of type 'layers'")
        diff_ids = rootfs.get("diff_ids")
        if not isinstance(diff_ids, list):
            raise _bad(what, "has no rootfs.diff_ids list")
        for i, diff_id in enumerate(diff_ids):
            digests.check(diff_id, what=f"diff id {i} in {what}")
        for key in ("architecture", "os"):
            if not isinstance(doc.get(key), str):
                raise _bad(what, f"has no {key}")
        config = doc.get("config", {})
        if config is not None and not isinstance(config, dict):
            raise _bad(what, "has a config that is not an object")
        return cls(doc)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.raw["rootfs"]["diff_ids"])

    @property
    def run(self) -> dict[str, Any]:
        """The ``config`` object: Env, Cmd, Entrypoint, WorkingDir, User, Labels, ..."""
        return self.raw.get("config") or {}

    @property
    def history(self) -> list[dict[str, Any]]:
        return [h for h in self.raw.get("history") or [] if isinstance(h, dict)]
