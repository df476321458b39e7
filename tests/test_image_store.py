"""The store: OCI layout on disk, verified reads, tags, references, garbage collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from image_helpers import assert_store_consistent, busybox_tree, image_from_dirs

from kit.errors import KitError
from kit.image import media
from kit.image import reference as references
from kit.image.digest import chain_ids, sha256_bytes
from kit.image.image import Image, list_images, resolve
from kit.image.store import Store


def test_layout_files_follow_the_spec(kit_root: Path) -> None:
    store = Store().init()
    assert json.loads((kit_root / "images" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    index = json.loads((kit_root / "images" / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    desc = store.put_bytes(b"hello", "application/octet-stream")
    assert desc.digest == sha256_bytes(b"hello")
    assert (kit_root / "images" / "blobs" / "sha256" / desc.digest[7:]).read_bytes() == b"hello"


def test_read_verifies_the_digest(kit_root: Path) -> None:
    store = Store().init()
    desc = store.put_bytes(b"original", "application/octet-stream")
    store.blob_path(desc.digest).write_bytes(b"tampered")
    with pytest.raises(KitError) as caught:
        store.read_blob(desc)
    assert desc.digest in str(caught.value)
    assert "size" in str(caught.value) or "mismatch" in str(caught.value)
    store.blob_path(desc.digest).write_bytes(b"tamperex")  # same size, other content
    with pytest.raises(KitError, match="digest mismatch"):
        store.read_blob(desc)


def test_missing_blob_is_named(kit_root: Path) -> None:
    store = Store().init()
    digest = sha256_bytes(b"never stored")
    with pytest.raises(KitError, match=digest):
        store.read_blob(digest)


def test_stream_with_wrong_digest_leaves_nothing(kit_root: Path) -> None:
    import io

    store = Store().init()
    wrong = sha256_bytes(b"something else")
    with pytest.raises(KitError, match="digest mismatch"):
        store.put_stream(io.BytesIO(b"content"), "application/octet-stream", expect=wrong)
    assert list(store.blobs.iterdir()) == []


def test_chain_ids() -> None:
    a, b = sha256_bytes(b"a"), sha256_bytes(b"b")
    assert chain_ids([a, b]) == [a, sha256_bytes(f"{a} {b}".encode())]


@pytest.mark.parametrize(
    ("text", "name", "remote"),
    [
        ("busybox", "busybox:latest", ("registry-1.docker.io", "library/busybox", "latest")),
        ("tools/box:1.2", "tools/box:1.2", ("registry-1.docker.io", "tools/box", "1.2")),
        ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", ("127.0.0.1:5000", "a/b", "t")),
        ("localhost/x", "localhost/x:latest", ("localhost", "x", "latest")),
        ("docker.io/library/alpine:3", "alpine:3", ("registry-1.docker.io", "library/alpine", "3")),
        (
            "docker.io/tools/box",
            "tools/box:latest",
            ("registry-1.docker.io", "tools/box", "latest"),
        ),
    ],
)
def test_references(text: str, name: str, remote: tuple[str, str, str]) -> None:
    ref = references.parse(text)
    assert ref.name == name
    assert ref.remote() == remote


@pytest.mark.parametrize("bad", ["Upper/case", "a:bad tag", "x@sha256:123", "a//b"])
def test_bad_references_are_refused(bad: str) -> None:
    with pytest.raises(KitError):
        references.parse(bad)


def test_tags_images_and_gc(kit_root: Path, tmp_path: Path) -> None:
    store = Store().init()
    base = busybox_tree(tmp_path / "base")
    extra = tmp_path / "extra"
    (extra / "srv").mkdir(parents=True)
    (extra / "srv" / "file").write_text("x")
    one = image_from_dirs(store, [base], "one:1")
    two = image_from_dirs(store, [base, extra], "two:1")
    # The shared bottom layer is unpacked once.
    assert one.chain_ids[0] == two.chain_ids[0]
    assert len([p for p in store.layers.iterdir() if p.name not in ("l", "init")]) == 2
    assert resolve(store, "one:1").id == one.id
    with pytest.raises(KitError, match="no such image: one"):
        resolve(store, "one")  # means one:latest, which does not exist
    assert resolve(store, one.short_id).id == one.id
    store.tag("alias:2", two.desc)
    assert {tuple(i.names) for i in list_images(store)} == {("one:1",), ("alias:2", "two:1")}
    store.untag("two:1")
    store.untag("alias:2")
    blobs, layers = store.collect()
    assert layers == 1 and blobs == 3  # two's manifest, config and its own layer
    assert store.has_layer(one.chain_ids[0])
    assert not store.has_layer(two.chain_ids[1])
    assert_store_consistent(kit_root)


def test_unknown_image_is_named(kit_root: Path) -> None:
    with pytest.raises(KitError, match="no such image: nothing:here"):
        resolve(Store().init(), "nothing:here")


def test_image_load_checks_layers_against_diff_ids(kit_root: Path, tmp_path: Path) -> None:
    from kit.image.documents import Manifest

    store = Store().init()
    image = image_from_dirs(store, [busybox_tree(tmp_path / "b")], "ok:1")
    manifest = Manifest(media.OCI_MANIFEST, image.config_desc, [*image.manifest.layers] * 2)
    desc = store.put_json(manifest.to_dict(), media.OCI_MANIFEST)
    with pytest.raises(KitError, match="2 layers, its config 1 diff ids"):
        Image.load(store, desc)
