"""The view models of ``kit layers``, ``kit which`` and ``kit diff``, as golden plain text.

The layer directories are built by hand in overlayfs's form (whiteouts as char devices 0/0,
opaque marks as xattrs), exactly what the store and a container's upper directory hold.
Regenerate the golden files with ``KIT_UPDATE_GOLDEN=1 pytest tests/test_layers_view.py``
and review the diff.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import check_golden

from kit.layers_view import container_diff, diff_lines, layer_stack, which


def _write(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def stack(tmp_path: Path) -> list[tuple[Path, str, str]]:
    base, app, cleanup = tmp_path / "0", tmp_path / "1", tmp_path / "2"
    _write(base, "bin/busybox", 1_000_000)
    (base / "bin" / "sh").symlink_to("busybox")
    _write(base, "etc/passwd", 120)
    _write(base, "etc/shadow", 80)
    _write(base, "var/cache/apt/big.bin", 250_000)
    _write(base, "var/cache/apt/small.bin", 5_000)
    _write(app, "etc/passwd", 150)  # changed
    _write(app, "srv/app/main.py", 2_000)  # added
    (app / "etc" / "shadow").unlink(missing_ok=True)
    os.mknod(app / "etc" / "shadow", stat.S_IFCHR, os.makedev(0, 0))  # removed
    (cleanup / "var" / "cache").mkdir(parents=True)
    os.mknod(cleanup / "var" / "cache" / "apt", stat.S_IFCHR, os.makedev(0, 0))
    _write(cleanup, "opt/tool/new", 10)
    os.setxattr(cleanup / "opt", "trusted.overlay.opaque", b"y")
    return [
        (base, "base", "ADD rootfs.tar /"),
        (app, "app", "COPY app /srv/app"),
        (cleanup, "cleanup", "RUN rm -rf /var/cache/apt"),
    ]


def test_layers_golden(stack: list[tuple[Path, str, str]]) -> None:
    view = layer_stack(stack)
    check_golden("layers.txt", view.lines())
    assert view.wasted == 120 + 80 + 250_000 + 5_000  # old passwd, shadow, the apt cache


def test_which_golden(stack: list[tuple[Path, str, str]], tmp_path: Path) -> None:
    layers = [(d, label) for d, label, _ in stack]
    upper = tmp_path / "upper"
    _write(upper, "etc/passwd", 170)
    layers.append((upper, "container web"))
    lines: list[str] = []
    for path in ("/etc/passwd", "/etc/shadow", "/var/cache/apt/big.bin", "/bin/sh", "/nothing"):
        lines += which(layers, path).lines()
    lines += which(layers, "/data/file", mounts=[("/data", "bind mount of /srv/data")]).lines()
    check_golden("which.txt", lines)


def test_container_diff_golden(stack: list[tuple[Path, str, str]], tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    _write(upper, "etc/passwd", 170)  # changed
    _write(upper, "tmp/scratch", 3)  # added (with its directory)
    os.mknod(upper / "etc" / "group", stat.S_IFCHR, os.makedev(0, 0))  # nothing below: no change
    (upper / "srv").mkdir()
    os.mknod(upper / "srv" / "app", stat.S_IFCHR, os.makedev(0, 0))  # deleted
    (upper / "var").mkdir()
    (upper / "var" / "cache").mkdir()
    os.setxattr(upper / "var" / "cache", "trusted.overlay.opaque", b"y")
    _write(upper, "var/cache/fresh", 1)
    changes = container_diff(upper, [d for d, _, _ in stack])
    check_golden("diff.txt", diff_lines(changes))
