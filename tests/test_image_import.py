"""``kit import`` of docker-save and OCI layout tars, ``kit save``, and bad archives refused."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from image_helpers import (
    assert_store_consistent,
    busybox_tree,
    image_from_dirs,
    kit,
    member,
    store_snapshot,
    tar_bytes,
)

from kit.errors import KitError
from kit.image.archive import import_archive
from kit.image.image import resolve
from kit.image.store import Store


def run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """An OCI layout made by another kit root (so the importing store starts empty)."""
    other = Store(tmp_path / "other-root").init()
    extra = tmp_path / "extra"
    (extra / "etc").mkdir(parents=True)
    (extra / "etc" / "hello").write_text("hi\n")
    image = image_from_dirs(
        other, [busybox_tree(tmp_path / "b"), extra], "src:1", run={"Cmd": ["/bin/sh"]}
    )
    out = tmp_path / "layout"
    from kit.image.archive import save

    save(image, str(out), tag="tools/box:2", as_tar=False)
    return out


def test_docker_save_archive(kit_root: Path, tmp_path: Path, layout: Path) -> None:
    archive = tmp_path / "docker.tar"
    # skopeo writes the `docker save` format: manifest.json, RepoTags, layer.tar files.
    run("skopeo", "copy", f"oci:{layout}:2", f"docker-archive:{archive}:tools/box:2")
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames() and "index.json" not in tar.getnames()
    out = kit("import", str(archive), root=kit_root).stdout
    assert "Loaded image: tools/box:2" in out
    run_out = kit("run", "--rm", "tools/box:2", "cat", "/etc/hello", root=kit_root)
    assert run_out.stdout == "hi\n"
    assert_store_consistent(kit_root)


def test_oci_layout_archive_keeps_its_name(kit_root: Path, tmp_path: Path, layout: Path) -> None:
    archive = tmp_path / "oci.tar"
    run("tar", "-C", str(layout), "-cf", str(archive), ".")
    images = import_archive(Store().init(), str(archive))
    assert images[0].names == ["tools/box:2"]  # from io.containerd.image.name
    named = import_archive(Store(), str(archive), name="renamed:7")
    assert sorted(named[0].names) == ["renamed:7", "tools/box:2"]  # one image, two names


def test_save_round_trip(kit_root: Path, tmp_path: Path, layout: Path) -> None:
    archive = tmp_path / "oci.tar"
    run("tar", "-C", str(layout), "-cf", str(archive), ".")
    kit("import", str(archive), root=kit_root)
    kit("save", "-o", str(tmp_path / "again.tar"), "tools/box:2", root=kit_root)
    kit("save", "-o", str(tmp_path / "again-dir"), "--format", "dir", "tools/box:2", root=kit_root)
    index = json.loads((tmp_path / "again-dir" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "2"
    second = tmp_path / "second-root"
    kit("import", str(tmp_path / "again.tar"), root=second)
    a = resolve(Store(kit_root), "tools/box:2")
    b = resolve(Store(second), "tools/box:2")
    assert a.desc.digest == b.desc.digest


def _bad_archive(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "bad.tar"
    path.write_bytes(tar_bytes([(member(name), data) for name, data in files.items()]))
    return path


def _refused(kit_root: Path, archive: Path) -> str:
    store = Store().init()
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        import_archive(store, str(archive))
    assert store_snapshot(kit_root) == before
    assert_store_consistent(kit_root)
    return str(caught.value)


def test_malformed_json_is_named(kit_root: Path, tmp_path: Path) -> None:
    archive = _bad_archive(tmp_path, {"oci-layout": b"{}", "index.json": b"{not json"})
    message = _refused(kit_root, archive)
    assert "index.json is not valid JSON" in message and "line 1" in message


def test_unknown_media_type_is_named(kit_root: Path, tmp_path: Path) -> None:
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/x-unknown", "digest": "sha256:" + "0" * 64, "size": 1}
        ],
    }
    archive = _bad_archive(
        tmp_path, {"oci-layout": b"{}", "index.json": json.dumps(index).encode()}
    )
    message = _refused(kit_root, archive)
    assert "application/x-unknown" in message


def test_blob_digest_mismatch_in_archive(kit_root: Path, tmp_path: Path, layout: Path) -> None:
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)
    biggest = blobs[0]  # a layer
    data = bytearray(biggest.read_bytes())
    data[-100] ^= 0xFF
    biggest.write_bytes(bytes(data))
    archive = tmp_path / "tampered.tar"
    run("tar", "-C", str(layout), "-cf", str(archive), ".")
    message = _refused(kit_root, archive)
    assert biggest.name in message and "mismatch" in message


def test_missing_blob_in_archive(kit_root: Path, tmp_path: Path, layout: Path) -> None:
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)
    blobs[0].unlink()
    archive = tmp_path / "incomplete.tar"
    run("tar", "-C", str(layout), "-cf", str(archive), ".")
    message = _refused(kit_root, archive)
    assert blobs[0].name in message and "incomplete" in message


def test_not_an_image_archive(kit_root: Path, tmp_path: Path) -> None:
    archive = _bad_archive(tmp_path, {"README": b"hello"})
    assert "neither an OCI layout nor a docker save archive" in _refused(kit_root, archive)
    (tmp_path / "junk.tar").write_bytes(b"junk" * 100)
    assert "not a tar archive" in _refused(kit_root, tmp_path / "junk.tar")


def test_hostile_member_names_in_archive(kit_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    buf = io.BytesIO(tar_bytes([(member("../../etc/evil"), b"x")]))
    path.write_bytes(buf.getvalue())
    assert "../../etc/evil" in _refused(kit_root, path)


def test_docker_manifest_with_wrong_layer(kit_root: Path, tmp_path: Path) -> None:
    layer = tar_bytes([(member("file"), b"content")])
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    }
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]
    archive = _bad_archive(
        tmp_path,
        {
            "manifest.json": json.dumps(manifest).encode(),
            "c.json": json.dumps(config).encode(),
            "l/layer.tar": layer,
        },
    )
    message = _refused(kit_root, archive)
    assert "l/layer.tar" in message and "sha256:" + "1" * 64 in message
