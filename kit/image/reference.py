"""Image references: ``NAME[:TAG][@DIGEST]``, as Docker spells them.

``alpine`` means ``alpine:latest``. A registry host is the first path component when it has a
dot or a colon, or is ``localhost``: ``127.0.0.1:5000/tools/box:1`` is ``tools/box`` tag ``1``
on the registry at ``127.0.0.1:5000``. Without one, ``kit pull`` uses Docker Hub, where
one-word names live under ``library/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kit.errors import KitError

DEFAULT_REGISTRY = "registry-1.docker.io"
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``registry`` is empty for local names."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The name as kit tags it locally: ``[registry/]repository:tag``."""
        base = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return f"{base}:{self.tag or 'latest'}"

    def remote(self) -> tuple[str, str, str]:
        """(registry host, repository path, tag or digest) for a registry request."""
        host = self.registry or DEFAULT_REGISTRY
        repository = self.repository
        if host == DEFAULT_REGISTRY and "/" not in repository:
            repository = f"library/{repository}"
        return host, repository, self.digest or self.tag or "latest"


def parse(text: str) -> Reference:
    """Parse ``text``; refuse malformed names with the rule they broke."""
    rest, _, digest = text.partition("@")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise _invalid(text, f"the tag {tag!r} may hold letters, digits, '_', '.', '-'")
    parts = rest.split("/")
    registry = ""
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
    if registry in DOCKER_HUB:
        # Docker Hub's names are kept short, as Docker shows them: docker.io/library/x is x.
        registry = ""
        if len(parts) > 1 and parts[0] == "library":
            parts.pop(0)
    for part in parts:
        if not _COMPONENT.match(part):
            raise _invalid(
                text, f"{part!r} must be lowercase letters and digits, joined by '.', '_' or '-'"
            )
    if digest:
        from kit.image.digest import check

        check(digest)
    return Reference(registry, "/".join(parts), tag, digest or None)


def _invalid(text: str, cause: str) -> KitError:
    return KitError(
        f"invalid image name {text!r}", cause=cause, fix="e.g. busybox:1.36", exit_code=2
    )
