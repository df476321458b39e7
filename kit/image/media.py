"""Media types: what kind of document or blob a descriptor points at.

Every descriptor says its media type, and kit refuses types it does not know instead of
guessing: a zstd layer read as gzip would fail half-way, a foreign document read as a
manifest would mean nothing. Docker's own (schema 2) types are accepted beside the OCI ones,
since registries and ``docker save`` still produce them.
"""

from __future__ import annotations

from kit.errors import KitError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIGS = (OCI_CONFIG, DOCKER_CONFIG)
GZIP_LAYERS = (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP, DOCKER_FOREIGN_GZIP)
PLAIN_LAYERS = (OCI_LAYER, OCI_LAYER_NONDIST)
LAYERS = GZIP_LAYERS + PLAIN_LAYERS

#: What ``kit pull`` asks a registry for, best first.
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def check(media_type: object, allowed: tuple[str, ...], *, what: str) -> str:
    """Return ``media_type`` if it is one of ``allowed``; refuse it by name otherwise."""
    if media_type in allowed:
        return str(media_type)
    cause = f"kit reads {what} of type {', '.join(allowed)}"
    if media_type == OCI_LAYER_ZSTD:
        cause = "zstd-compressed layers are not supported (Python has no zstd decoder built in)"
    raise KitError(
        f"unknown media type {media_type!r} for {what}",
        cause=cause,
        fix="convert the image, e.g. `skopeo copy --dest-compress-format gzip ...`",
    )


def is_gzip(media_type: str) -> bool:
    return media_type in GZIP_LAYERS
