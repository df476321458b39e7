"""Digests and ids: how the store names content.

A digest is ``ALGORITHM:HEX`` (kit writes and reads ``sha256``). A blob's name *is* the hash of
its bytes, so reading a blob back and hashing it proves it is the one that was asked for;
kit does that on every read (:class:`HashingReader` does it while streaming).

A layer's **diff id** is the digest of its *uncompressed* tar; the **chain id** of layer N
names the whole stack below and including it (``chain(0) = diff(0)``, ``chain(n) =
sha256(chain(n-1) + " " + diff(n))``), so two images that share their first layers share
the same unpacked directories.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from kit.errors import KitError

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256_bytes(data: bytes) -> str:
    """The digest of ``data``: ``sha256:<64 hex digits>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check(digest: object, *, what: str = "digest") -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else refuse it by name."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        algorithm = digest.split(":", 1)[0] if isinstance(digest, str) and ":" in digest else ""
        cause = (
            f"kit only knows sha256, not {algorithm}"
            if algorithm and algorithm != "sha256"
            else "a digest is 'sha256:' followed by 64 lowercase hex digits"
        )
        raise KitError(f"invalid {what} {str(digest)[:90]!r}", cause=cause, fix="check the image")
    return digest


def hex_of(digest: str) -> str:
    """The hex part of a digest (the file name of its blob)."""
    return check(digest).split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain id of every layer of a stack, bottom first."""
    out: list[str] = []
    for diff_id in diff_ids:
        check(diff_id, what="diff id")
        out.append(diff_id if not out else sha256_bytes(f"{out[-1]} {diff_id}".encode()))
    return out


class HashingReader:
    """A read-only stream that hashes (and counts) what passes through it.

    Wrap a blob or a download with it, read everything, then :meth:`verify`. It cannot seek,
    so consumers read it once, in order (tarfile's stream mode).
    """

    def __init__(self, raw: BinaryIO, name: str = "stream") -> None:
        self.raw = raw
        self.name = name
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def drain(self) -> None:
        """Read what is left (tar readers stop at the end marker, before the padding)."""
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def verify(self, digest: str, size: int | None = None, *, what: str = "blob") -> None:
        """Drain, then refuse if the digest or size differ from what was promised."""
        self.drain()
        if size is not None and size >= 0 and self.size != size:
            raise KitError(
                f"{what} {digest} has the wrong size: {self.size} bytes, expected {size}",
                cause="the content is truncated, padded or not the one the manifest names",
                fix="fetch or import the image again from a source you trust",
            )
        if self.digest != digest:
            raise KitError(
                f"{what} digest mismatch: expected {digest}, got {self.digest}",
                cause="the content was changed or corrupted after it was named",
                fix="fetch or import the image again from a source you trust",
            )
