"""``kit pull`` from a real registry on loopback, with token auth, platforms and errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_helpers import (
    assert_store_consistent,
    busybox_tree,
    image_from_dirs,
    kit,
    store_snapshot,
)
from registry_fixture import Registry, start_registry

from kit.errors import KitError
from kit.image import media
from kit.image.archive import save
from kit.image.documents import Descriptor, Index, canonical
from kit.image.registry import pull
from kit.image.store import Store


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    yield from start_registry(tmp_path / "registry")


def _layout(tmp_path: Path, label: str, tag: str) -> Path:
    """An OCI layout with one small image whose /platform file says ``label``."""
    store = Store(tmp_path / f"src-{label}").init()
    top = tmp_path / f"top-{label}"
    top.mkdir()
    (top / "platform").write_text(label + "\n")
    image = image_from_dirs(
        store, [busybox_tree(tmp_path / f"base-{label}"), top], f"src:{label}",
        run={"Cmd": ["/bin/cat", "/platform"]},
    )  # fmt: skip
    out = tmp_path / f"layout-{label}"
    save(image, str(out), tag=f"src:{tag}", as_tar=False)
    return out


def test_pull_with_token_auth_and_run(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    registry.push(f"oci:{_layout(tmp_path, 'amd64', 'one')}:one", "tools/box:1")
    registry.requests.clear()
    result = kit("pull", f"{registry.host}/tools/box:1", root=kit_root)
    assert f"{registry.host}/tools/box:1" in result.stdout
    # kit met the registry's 401, asked the token service for exactly this scope, and retried.
    assert registry.requests == ["repository:tools/box:pull"]
    assert kit("run", "--rm", f"{registry.host}/tools/box:1", root=kit_root).stdout == "amd64\n"
    images = json.loads(kit("images", "--json", root=kit_root).stdout)
    assert images[0]["repository"] == f"{registry.host}/tools/box"
    assert_store_consistent(kit_root)


def test_platform_selection(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    amd, arm = _layout(tmp_path, "amd64", "x"), _layout(tmp_path, "arm64", "x")
    multi = tmp_path / "multi"
    shutil.copytree(amd, multi)
    for blob in (arm / "blobs" / "sha256").iterdir():
        shutil.copy(blob, multi / "blobs" / "sha256" / blob.name)
    entries = []
    for layout, arch in ((amd, "amd64"), (arm, "arm64")):
        desc = json.loads((layout / "index.json").read_text())["manifests"][0]
        plat = {
            "os": "linux",
            "architecture": arch,
            **({"variant": "v8"} if arch == "arm64" else {}),
        }
        entries.append(Descriptor(desc["mediaType"], desc["digest"], desc["size"], platform=plat))
    index_bytes = canonical(Index(entries).to_dict())
    store = Store(tmp_path / "scratch-root").init()
    index_desc = store.put_bytes(index_bytes, media.OCI_INDEX)
    (multi / "blobs" / "sha256" / index_desc.digest[7:]).write_bytes(index_bytes)
    top = Index([Descriptor(media.OCI_INDEX, index_desc.digest, index_desc.size,
                            {"org.opencontainers.image.ref.name": "multi"})])  # fmt: skip
    (multi / "index.json").write_bytes(canonical(top.to_dict()))
    registry.push(f"oci:{multi}:multi", "tools/multi:1", all_images=True)

    ref = f"{registry.host}/tools/multi:1"
    kit("pull", ref, root=kit_root)
    assert kit("run", "--rm", ref, root=kit_root).stdout == "amd64\n"
    kit("pull", "--platform", "linux/arm64", ref, root=kit_root)
    # The arm64 image only holds a static x86 busybox in this test: its file tells which it is.
    arm_root = Store(kit_root)
    from kit.image.image import resolve

    image = resolve(arm_root, ref)
    assert (Path(image.layer_dirs()[-1]) / "platform").read_text() == "arm64\n"
    failed = kit("pull", "--platform", "linux/s390x", ref, root=kit_root, check=False)
    assert failed.returncode == 1
    assert "no image for linux/s390x" in failed.stderr and "linux/arm64" in failed.stderr


def test_pull_by_digest(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    layout = _layout(tmp_path, "amd64", "d")
    registry.push(f"oci:{layout}:d", "tools/box:1")
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    image = pull(Store(), f"{registry.host}/tools/box@{digest}")
    assert image.desc.digest == digest
    missing = "sha256:" + "ab" * 32
    with pytest.raises(KitError, match="HTTP 404"):
        pull(Store(), f"{registry.host}/tools/box@{missing}")


def test_registry_errors_are_named(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    registry.push(f"oci:{_layout(tmp_path, 'amd64', 'e')}:e", "tools/box:1")
    Store().init()
    before = store_snapshot(kit_root)
    unknown = kit("pull", f"{registry.host}/tools/box:nope", root=kit_root, check=False)
    assert "HTTP 404" in unknown.stderr and "MANIFEST_UNKNOWN" in unknown.stderr
    private = kit("pull", f"{registry.host}/private/box:1", root=kit_root, check=False)
    assert "token service" in private.stderr and "403" in private.stderr
    nobody = kit("pull", "127.0.0.1:1/tools/box:1", root=kit_root, check=False)
    assert "cannot reach registry 127.0.0.1:1" in nobody.stderr
    assert store_snapshot(kit_root) == before


def _registry_blob(registry: Registry, digest: str) -> Path:
    hexa = digest.split(":")[1]
    return registry.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"


def _layer_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_hex).read_text())
    return manifest["layers"][-1]["digest"]


def test_corrupted_blob_is_refused(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    layout = _layout(tmp_path, "amd64", "c")
    registry.push(f"oci:{layout}:c", "tools/box:1")
    digest = _layer_digest(layout)
    data = _registry_blob(registry, digest)
    content = bytearray(data.read_bytes())
    content[-20] ^= 0xFF  # the registry serves stored bytes as they are
    data.write_bytes(bytes(content))
    Store().init()
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        pull(Store(), f"{registry.host}/tools/box:1")
    assert digest in str(caught.value) and "mismatch" in str(caught.value)
    assert store_snapshot(kit_root) == before
    assert_store_consistent(kit_root)


def test_missing_blob_is_named(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    layout = _layout(tmp_path, "amd64", "m")
    registry.push(f"oci:{layout}:m", "tools/box:1")
    digest = _layer_digest(layout)
    _registry_blob(registry, digest).unlink()
    Store().init()
    before = store_snapshot(kit_root)
    with pytest.raises(KitError) as caught:
        pull(Store(), f"{registry.host}/tools/box:1")
    assert digest in str(caught.value) and "404" in str(caught.value)
    assert store_snapshot(kit_root) == before


def test_progress_is_reported(kit_root: Path, tmp_path: Path, registry: Registry) -> None:
    registry.push(f"oci:{_layout(tmp_path, 'amd64', 'p')}:p", "tools/box:1")
    seen: dict[str, tuple[int, int]] = {}
    pull(Store(), f"{registry.host}/tools/box:1",
         progress=lambda what, done, total: seen.__setitem__(what, (done, total)))  # fmt: skip
    blobs = {k: v for k, v in seen.items() if k.startswith("blob ")}
    assert len(blobs) == 3  # config and two layers
    assert all(done == total for done, total in blobs.values())
    assert seen["layers"] == (2, 2)
