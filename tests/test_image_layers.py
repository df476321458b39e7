"""Layer tars both ways (whiteouts), and every kind of bad layer refused, the store intact."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from image_helpers import (
    assert_store_consistent,
    busybox_tree,
    image_from_dirs,
    member,
    store_snapshot,
    tar_bytes,
)

from kit.errors import KitError
from kit.image import layer as layers
from kit.image import media
from kit.image.digest import sha256_bytes
from kit.image.image import Image, new_config, write_image
from kit.image.store import Store


def _image_with_layer(store: Store, blob: bytes, *, gz: bool, diff_id: str | None = None) -> Image:
    kind = media.OCI_LAYER_GZIP if gz else media.OCI_LAYER
    desc = store.put_bytes(blob, kind)
    config = new_config()
    plain = gzip.decompress(blob) if gz else blob
    config["rootfs"]["diff_ids"] = [diff_id or sha256_bytes(plain)]
    return write_image(store, config, [desc], "bad:1")


def _refused(kit_root: Path, blob: bytes, *, gz: bool = False, diff_id: str | None = None) -> str:
    """Unpack a layer that must be refused; return the message; check the store is intact."""
    store = Store().init()
    image = _image_with_layer(store, blob, gz=gz, diff_id=diff_id)
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        image.unpack()
    after = store_snapshot(kit_root)
    assert after == before, "a refused layer changed the store"
    assert not store.has_layer(image.chain_ids[0])
    assert_store_consistent(kit_root)
    return str(caught.value)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the store that hostile layers aim at."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret").write_text("host data")
    return target


def test_whiteouts_become_overlay_marks(kit_root: Path) -> None:
    store = Store().init()
    blob = tar_bytes(
        [
            (member("etc", tarfile.DIRTYPE, mode=0o755), None),
            (member("etc/.wh.passwd"), b""),
            (member("opt", tarfile.DIRTYPE, mode=0o755), None),
            (member("opt/.wh..wh..opq"), b""),
            (member("opt/new"), b"fresh"),
        ]
    )
    image = _image_with_layer(store, blob, gz=False)
    image.unpack()
    diff = Path(image.layer_dirs()[0])
    st = os.lstat(diff / "etc" / "passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(diff / "opt", "trusted.overlay.opaque") == b"y"
    assert (diff / "opt" / "new").read_text() == "fresh"
    assert not any(p.name.startswith(".wh.") for p in diff.rglob("*"))


def test_pack_turns_marks_back_into_whiteout_files(tmp_path: Path) -> None:
    tree = tmp_path / "upper"
    (tree / "etc").mkdir(parents=True)
    os.mknod(tree / "etc" / "shadow", stat.S_IFCHR, os.makedev(0, 0))
    (tree / "var").mkdir()
    os.setxattr(tree / "var", "trusted.overlay.opaque", b"y")
    os.setxattr(tree / "var", "user.kept", b"1")
    (tree / "var" / "log").write_text("x")
    out = io.BytesIO()
    packed = layers.pack(tree, out, compress=True)
    data = gzip.decompress(out.getvalue())
    assert packed.diff_id == sha256_bytes(data)
    assert packed.desc.digest == sha256_bytes(out.getvalue())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        var = tar.getmember("var")
    assert "etc/.wh.shadow" in names and "var/.wh..wh..opq" in names and "var/log" in names
    assert "etc/shadow" not in names
    assert var.pax_headers.get("SCHILY.xattr.user.kept") == "1"
    assert not any("overlay" in key for key in var.pax_headers)
    # Deterministic: the same tree packs to the same digests.
    again = io.BytesIO()
    assert layers.pack(tree, again).desc.digest == packed.desc.digest


def test_round_trip_of_a_tree(kit_root: Path, tmp_path: Path) -> None:
    store = Store().init()
    tree = busybox_tree(tmp_path / "tree")
    (tree / "data").mkdir()
    (tree / "data" / "a").write_text("A")
    os.link(tree / "data" / "a", tree / "data" / "hard")
    os.chown(tree / "data" / "a", 1000, 50)
    os.chmod(tree / "data" / "a", 0o4750)  # after chown, which clears setuid
    os.mkfifo(tree / "data" / "fifo")
    image = image_from_dirs(store, [tree], "rt:1")
    out = Path(image.layer_dirs()[0])
    st = os.stat(out / "data" / "a")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4750, 1000, 50)
    assert st.st_ino == os.stat(out / "data" / "hard").st_ino
    assert stat.S_ISFIFO(os.lstat(out / "data" / "fifo").st_mode)
    assert os.readlink(out / "bin" / "sh") == "busybox"


# --- hostile layers --------------------------------------------------------------------------


def test_path_traversal(kit_root: Path, outside: Path) -> None:
    blob = tar_bytes([(member("../../outside/evil"), b"x")])
    message = _refused(kit_root, blob)
    assert "../../outside/evil" in message and "'..'" in message
    assert not (outside / "evil").exists()


def test_absolute_path(kit_root: Path, outside: Path) -> None:
    blob = tar_bytes([(member(str(outside / "evil")), b"x")])
    message = _refused(kit_root, blob)
    assert str(outside / "evil") in message and "absolute" in message
    assert not (outside / "evil").exists()


def test_symlink_then_file_through_it(kit_root: Path, outside: Path) -> None:
    blob = tar_bytes(
        [
            (member("link", tarfile.SYMTYPE, linkname=str(outside)), None),
            (member("link/evil"), b"x"),
        ]
    )
    message = _refused(kit_root, blob)
    assert "link/evil" in message and "symlink" in message
    assert not (outside / "evil").exists()


def test_hardlink_to_outside(kit_root: Path, outside: Path) -> None:
    blob = tar_bytes([(member("stolen", tarfile.LNKTYPE, linkname=str(outside / "secret")), None)])
    message = _refused(kit_root, blob)
    assert "stolen" in message and "hard link" in message
    blob = tar_bytes([(member("stolen", tarfile.LNKTYPE, linkname="../outside/secret"), None)])
    assert "stolen" in _refused(kit_root, blob)
    assert os.stat(outside / "secret").st_nlink == 1


def test_duplicate_entries(kit_root: Path) -> None:
    blob = tar_bytes([(member("etc/motd"), b"hello"), (member("etc/motd"), b"evil")])
    message = _refused(kit_root, blob)
    assert "etc/motd" in message and "twice" in message


def test_device_nodes_refused_when_rootless(tmp_path: Path) -> None:
    """As an unprivileged user (a real setuid in a child), a device node is refused by name."""
    blob = tar_bytes([(member("dev/sda", tarfile.CHRTYPE, devmajor=8, devminor=0), None)])
    desc = media.OCI_LAYER
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chown(dest, 65534, 65534)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        message = "no error"
        try:
            fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            from kit.image.documents import Descriptor

            layers.unpack(
                io.BytesIO(blob),
                Descriptor(desc, sha256_bytes(blob), len(blob)),
                Path(f"/proc/self/fd/{fd}"),
            )
        except KitError as exc:
            message = str(exc)
        except BaseException as exc:
            message = f"unexpected {type(exc).__name__}: {exc}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as source:
        message = source.read()
    os.waitpid(pid, 0)
    assert "dev/sda" in message and "device node" in message, message
    assert list(dest.iterdir()) == []


def test_device_nodes_allowed_for_root(kit_root: Path) -> None:
    store = Store().init()
    blob = tar_bytes([(member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)])
    image = _image_with_layer(store, blob, gz=False)
    image.unpack()
    st = os.lstat(Path(image.layer_dirs()[0]) / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


# --- damaged content -------------------------------------------------------------------------


def test_digest_mismatch(kit_root: Path) -> None:
    store = Store().init()
    blob = tar_bytes([(member("file"), b"good")])
    image = _image_with_layer(store, blob, gz=False)
    path = store.blob_path(image.manifest.layers[0].digest)
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF  # one changed byte inside the file's content
    path.write_bytes(bytes(data))
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        image.unpack()
    assert image.manifest.layers[0].digest in str(caught.value)
    assert "mismatch" in str(caught.value)
    assert store_snapshot(kit_root) == before
    assert_store_consistent(kit_root)


def test_size_mismatch(kit_root: Path) -> None:
    store = Store().init()
    blob = tar_bytes([(member("file"), b"good")])
    desc = store.put_bytes(blob, media.OCI_LAYER)
    desc.size += 10
    config = new_config()
    config["rootfs"]["diff_ids"] = [sha256_bytes(blob)]
    image = write_image(store, config, [desc], "size:1")
    with pytest.raises(KitError) as caught:
        image.unpack()
    assert "wrong size" in str(caught.value) and desc.digest in str(caught.value)
    assert not store.has_layer(image.chain_ids[0])
    assert_store_consistent(kit_root)


def test_truncated_gzip(kit_root: Path) -> None:
    full = gzip.compress(tar_bytes([(member("big"), os.urandom(200_000))]))
    blob = full[: len(full) // 2]
    store = Store().init()
    desc = store.put_bytes(blob, media.OCI_LAYER_GZIP)
    config = new_config()
    config["rootfs"]["diff_ids"] = [sha256_bytes(gzip.decompress(full))]
    image = write_image(store, config, [desc], "trunc:1")
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        image.unpack()
    assert "gzip" in str(caught.value) and desc.digest[:19] in str(caught.value)
    assert store_snapshot(kit_root) == before
    assert_store_consistent(kit_root)


def test_diff_id_mismatch(kit_root: Path) -> None:
    blob = gzip.compress(tar_bytes([(member("file"), b"x")]))
    wrong = sha256_bytes(b"another layer")
    message = _refused(kit_root, blob, gz=True, diff_id=wrong)
    assert wrong in message and "diff id" in message


def test_not_a_tar(kit_root: Path) -> None:
    message = _refused(kit_root, b"this is no tar archive" * 40)
    assert "tar" in message


def test_unknown_layer_media_type(kit_root: Path) -> None:
    from kit.image.documents import Manifest

    store = Store().init()
    blob = tar_bytes([(member("file"), b"x")])
    desc = store.put_bytes(blob, media.OCI_LAYER_ZSTD)
    config = store.put_json(
        {**new_config(), "rootfs": {"type": "layers", "diff_ids": [sha256_bytes(blob)]}},
        media.OCI_CONFIG,
    )
    manifest = store.put_json(
        Manifest(media.OCI_MANIFEST, config, [desc]).to_dict(), media.OCI_MANIFEST
    )
    with pytest.raises(KitError) as caught:
        Image.load(store, manifest)
    assert media.OCI_LAYER_ZSTD in str(caught.value) and "zstd" in str(caught.value)
