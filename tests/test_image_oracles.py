"""External oracles: umoci and skopeo read what kit writes, kit runs what umoci writes,
and kit's documents validate against the OCI image-spec's rules."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import oci_schemas
import pytest
from image_helpers import busybox_tree, describe_tree, kit, merged_tree, umoci_whiteout_image

from kit.image.documents import REF_NAME
from kit.image.image import resolve
from kit.image.store import Store


def run(*argv: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


@pytest.fixture
def kit_image(kit_root: Path, tmp_path: Path) -> str:
    """An image built by kit with every kind of entry, whiteouts and an opaque directory."""
    context = tmp_path / "context"
    busybox_tree(context / "root", ("sh", "ls", "cat", "rm", "mkdir", "chmod", "chown", "ln"))
    (context / "root" / "etc" / "motd").write_text("welcome\n")
    (context / "root" / "opt" / "app" / "lib").mkdir(parents=True)
    (context / "root" / "opt" / "app" / "lib" / "old.so").write_text("old")
    (context / "root" / "opt" / "app" / "run").write_text("#!/bin/sh\n")
    os.chmod(context / "root" / "opt" / "app" / "run", 0o755)
    subprocess.run(["tar", "-C", str(context / "root"), "-cf", str(context / "root.tar"), "."])
    (context / "conf").mkdir()
    (context / "conf" / "app.conf").write_text("x=1\n")
    (context / "Kitfile").write_text(
        "FROM scratch\n"
        "ADD root.tar /\n"
        "COPY conf /etc/app/\n"
        "RUN rm /etc/motd && rm -r /opt/app/lib && mkdir /opt/app/lib && echo new > "
        "/opt/app/lib/new.so && mkdir -p /srv && echo s > /srv/file && chmod 0640 /srv/file "
        "&& chown 1000:50 /srv/file && ln /srv/file /srv/hard && ln -s ../srv/file /opt/link "
        "&& chmod 4755 /opt/app/run\n"
        'CMD ["/bin/sh"]\n'
    )
    kit("build", "-t", "oracle:1", str(context), root=kit_root)
    return "oracle:1"


def _kit_view(kit_root: Path, name: str, scratch: Path) -> dict[str, object]:
    image = resolve(Store(kit_root), name)
    return merged_tree(image.lower_dirs(), scratch)


def test_umoci_unpacks_the_same_tree(kit_root: Path, tmp_path: Path, kit_image: str) -> None:
    layout = tmp_path / "layout"
    kit("save", "--format", "dir", "-o", str(layout), kit_image, root=kit_root)
    run("umoci", "unpack", "--image", f"{layout}:1", str(tmp_path / "bundle"))
    theirs = describe_tree(tmp_path / "bundle" / "rootfs")
    ours = _kit_view(kit_root, kit_image, tmp_path)
    assert theirs == ours
    # The whiteouts and the opaque directory took effect in both.
    assert "etc/motd" not in ours and "opt/app/lib/old.so" not in ours
    assert ours["opt/app/lib/new.so"]["type"] == "file"
    assert ours["srv/file"] == {**ours["srv/file"], "mode": "0o640", "uid": 1000, "gid": 50}
    assert ours["opt/app/run"]["mode"] == "0o4755"
    assert ours["opt/link"] == {"type": "symlink", "target": "../srv/file", "uid": 0, "gid": 0}


def test_skopeo_copies_from_kits_store_and_saved_layout(
    kit_root: Path, tmp_path: Path, kit_image: str
) -> None:
    # skopeo re-hashes every blob it copies: a wrong digest anywhere would fail here.
    run("skopeo", "copy", f"oci:{kit_root / 'images'}:{kit_image}", f"oci:{tmp_path / 'a'}:x")
    kit("save", "-o", str(tmp_path / "saved.tar"), kit_image, root=kit_root)
    run("skopeo", "copy", f"oci-archive:{tmp_path / 'saved.tar'}:1", f"oci:{tmp_path / 'b'}:y")
    inspect = json.loads(run("skopeo", "inspect", f"oci:{tmp_path / 'b'}:y"))
    image = resolve(Store(kit_root), kit_image)
    assert inspect["Layers"] == [layer.digest for layer in image.manifest.layers]


def test_documents_validate_against_the_oci_schemas(
    kit_root: Path, tmp_path: Path, kit_image: str
) -> None:
    store = Store(kit_root)
    image = resolve(store, kit_image)
    oci_schemas.validate(json.loads((store.root / "oci-layout").read_text()), oci_schemas.LAYOUT)
    index = json.loads((store.root / "index.json").read_text())
    oci_schemas.validate(index, oci_schemas.INDEX)
    assert any(d["annotations"][REF_NAME] == kit_image for d in index["manifests"])
    oci_schemas.validate(json.loads(store.read_blob(image.desc)), oci_schemas.MANIFEST)
    config = json.loads(store.read_blob(image.config_desc))
    oci_schemas.validate(config, oci_schemas.CONFIG)
    assert len(config["history"]) == 4 and config["history"][-1].get("empty_layer") is True
    layout = tmp_path / "saved"
    kit("save", "--format", "dir", "-o", str(layout), kit_image, root=kit_root)
    saved = json.loads((layout / "index.json").read_text())
    oci_schemas.validate(saved, oci_schemas.INDEX)
    assert saved["manifests"][0]["annotations"][REF_NAME] == "1"


def test_schemas_catch_a_broken_document() -> None:
    import jsonschema

    with pytest.raises(jsonschema.ValidationError, match="diff_ids"):
        oci_schemas.validate(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}},
            oci_schemas.CONFIG,
        )


@pytest.fixture
def umoci_image(tmp_path: Path) -> Path:
    """An image made by umoci: a base layer, a whiteout layer, an opaque layer."""
    src = busybox_tree(tmp_path / "src", ("sh", "ls", "cat"))
    return umoci_whiteout_image(tmp_path / "umoci-layout", src, tmp_path / "opt2")


def test_kit_runs_umoci_images_like_umoci_unpacks_them(
    kit_root: Path, tmp_path: Path, umoci_image: Path
) -> None:
    archive = tmp_path / "umoci.tar"
    run("tar", "-C", str(umoci_image), "-cf", str(archive), ".")
    kit("import", str(archive), "fromumoci:base", root=kit_root)
    run("umoci", "unpack", "--image", f"{umoci_image}:base", str(tmp_path / "bundle"))
    theirs = describe_tree(tmp_path / "bundle" / "rootfs")
    ours = _kit_view(kit_root, "fromumoci:base", tmp_path)
    assert ours == theirs
    assert "etc/removed" not in ours and "opt/keep" not in ours and "opt/new" in ours
    inside = kit(
        "run",
        "--rm",
        "fromumoci:base",
        "/bin/sh",
        "-c",
        "ls /opt; cat /etc/removed 2>&1 | grep -c 'No such'",
        root=kit_root,
    ).stdout.split()
    assert inside == ["new", "1"]
    # kit's unpacked layers hold overlay's own marks for what umoci wrote as .wh. files.
    image = resolve(Store(kit_root), "fromumoci:base")
    whiteout = Path(image.layer_dirs()[1]) / "etc" / "removed"
    assert stat.S_ISCHR(os.lstat(whiteout).st_mode)
    assert os.getxattr(Path(image.layer_dirs()[2]) / "opt", "trusted.overlay.opaque") == b"y"
    shutil.rmtree(tmp_path / "bundle")
