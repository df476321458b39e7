"""overlayfs on the real kernel: union, copy-up, whiteouts, opaque dirs, and 500 layers.

Every mount happens in a forked child's private mount namespace (see image_helpers), so the
host's mount table never changes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from image_helpers import busybox_tree, image_from_dirs, in_mount_namespace, kit

from kit import overlay
from kit.errors import KitError
from kit.image.store import Store


def _layers(tmp_path: Path) -> tuple[Path, Path, Path, Path, Path]:
    lower1, lower2 = tmp_path / "lower1", tmp_path / "lower2"
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (lower1, lower2, upper, work, merged):
        d.mkdir()
    (lower1 / "base").write_text("from lower1")
    (lower1 / "shared").write_text("lower1 version")
    (lower1 / "dir").mkdir()
    (lower1 / "dir" / "old").write_text("old")
    (lower2 / "shared").write_text("lower2 version")
    return lower1, lower2, upper, work, merged


@pytest.mark.parametrize("method", ["lowerdir+", "mount"])
def test_union_copy_up_whiteout_opaque(tmp_path: Path, method: str) -> None:
    lower1, lower2, upper, work, merged = _layers(tmp_path)

    def inside() -> dict[str, object]:
        used = overlay.mount_overlay(
            str(merged), [str(lower2), str(lower1)], str(upper), str(work), method=method
        )
        seen = {
            "method": used,
            "names": sorted(os.listdir(merged)),
            "shared": (merged / "shared").read_text(),
        }
        with open(merged / "base", "a") as handle:  # copy-up
            handle.write(" + change")
        os.unlink(merged / "shared")  # whiteout
        for name in os.listdir(merged / "dir"):
            os.unlink(merged / "dir" / name)
        os.rmdir(merged / "dir")
        os.mkdir(merged / "dir")  # a new directory where a lower one was: opaque
        (merged / "dir" / "new").write_text("new")
        seen["dir"] = sorted(os.listdir(merged / "dir"))
        return seen

    seen = in_mount_namespace(inside)
    assert seen["method"] == method
    assert seen["names"] == ["base", "dir", "shared"]
    assert seen["shared"] == "lower2 version"  # the top layer wins
    assert seen["dir"] == ["new"]
    # What the kernel left in the upper directory, read from the host afterwards:
    assert (upper / "base").read_text() == "from lower1 + change"
    assert (lower1 / "base").read_text() == "from lower1"  # lower layers never change
    st = os.lstat(upper / "shared")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert overlay.is_whiteout(st)
    assert os.getxattr(upper / "dir", "trusted.overlay.opaque") == b"y"
    assert overlay.is_opaque(upper / "dir")


def test_userxattr_marks_go_to_user_namespace_xattrs(tmp_path: Path) -> None:
    lower1, _, upper, work, merged = _layers(tmp_path)

    def inside() -> None:
        overlay.mount_overlay(str(merged), [str(lower1)], str(upper), str(work), userxattr=True)
        for name in os.listdir(merged / "dir"):
            os.unlink(merged / "dir" / name)
        os.rmdir(merged / "dir")
        os.mkdir(merged / "dir")

    in_mount_namespace(inside)
    assert os.getxattr(upper / "dir", "user.overlay.opaque") == b"y"
    assert overlay.is_opaque(upper / "dir", userxattr=True)


def test_more_than_500_layers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="501 layers are more than overlayfs stacks"):
        overlay.mount_overlay(str(tmp_path), [str(tmp_path)] * 501)


def _many_layers(store: Store, tmp_path: Path, count: int) -> list[str]:
    """``count`` unpacked layers in the store; top first."""
    dirs = [busybox_tree(tmp_path / "layer-0")]
    for i in range(1, count):
        d = tmp_path / f"layer-{i}"
        (d / "layers").mkdir(parents=True)
        (d / "layers" / str(i)).write_text(str(i))
        dirs.append(d)
    image = image_from_dirs(store, dirs, f"many:{count}", compress=False)
    return image.lower_dirs()


@pytest.mark.parametrize("method", ["lowerdir+", "mount"])
def test_500_layers_mount(kit_root: Path, tmp_path: Path, method: str) -> None:
    lowers = _many_layers(Store().init(), tmp_path, 500)
    upper, work, merged = tmp_path / "u", tmp_path / "w", tmp_path / "m"
    for d in (upper, work, merged):
        d.mkdir()
    # With mount(2), 500 absolute paths are far over a page: kit must use the short names.
    assert len(":".join(lowers)) > overlay.PAGE

    def inside() -> list[str]:
        overlay.mount_overlay(str(merged), lowers, str(upper), str(work), method=method)
        return sorted(os.listdir(merged / "layers"), key=int)

    assert in_mount_namespace(inside) == [str(i) for i in range(1, 500)]


def test_500_layer_image_runs(kit_root: Path, tmp_path: Path) -> None:
    _many_layers(Store().init(), tmp_path, 500)
    result = kit(
        "run",
        "--rm",
        "many:500",
        "/bin/sh",
        "-c",
        "ls /layers | wc -l; echo $(cat /layers/1) $(cat /layers/499)",
        root=kit_root,
    )
    lines = result.stdout.split()
    assert lines[:3] == ["499", "1", "499"], result.stdout
