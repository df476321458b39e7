"""The image commands as a user types them: images, tag, rmi, history, layers, which."""

from __future__ import annotations

import json
from pathlib import Path

from image_helpers import busybox_tree, image_from_dirs, kit

from kit.image.store import Store


def _two_layer_image(kit_root: Path, tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "srv").mkdir(parents=True)
    (top / "srv" / "data").write_text("data\n")
    (top / "etc").mkdir()
    (top / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    image_from_dirs(
        Store().init(), [busybox_tree(tmp_path / "base"), top], "cli:1", run={"Cmd": ["/bin/sh"]}
    )


def test_images_tag_history(kit_root: Path, tmp_path: Path) -> None:
    _two_layer_image(kit_root, tmp_path)
    kit("tag", "cli:1", "other/name:2", root=kit_root)
    rows = json.loads(kit("images", "--json", root=kit_root).stdout)
    assert {(r["repository"], r["tag"]) for r in rows} == {("cli", "1"), ("other/name", "2")}
    assert len({r["id"] for r in rows}) == 1 and rows[0]["layers"] == 2
    table = kit("images", root=kit_root).stdout
    assert "REPOSITORY" in table and "other/name" in table
    history = kit("history", "cli:1", root=kit_root).stdout.splitlines()
    assert len(history) == 2 and "layer top" in history[0]


def test_rmi_keeps_what_others_use(kit_root: Path, tmp_path: Path) -> None:
    _two_layer_image(kit_root, tmp_path)
    store = Store()
    layers = {p.name for p in store.layers.iterdir()}
    kit("tag", "cli:1", "copy:1", root=kit_root)
    kit("rmi", "cli:1", root=kit_root)
    assert {p.name for p in store.layers.iterdir()} == layers  # copy:1 still needs them
    kit("run", "--name", "user", "copy:1", "/bin/sh", "-c", ":", root=kit_root)
    out = kit("rmi", "copy:1", root=kit_root).stdout
    assert "Untagged: copy:1" in out
    # The stopped container still stands on the layers: they stay until it is removed.
    assert {p.name for p in store.layers.iterdir()} >= layers - {"init"}
    missing = kit("rmi", "copy:1", root=kit_root, check=False)
    assert missing.returncode != 0 and "no such image: copy:1" in missing.stderr


def test_layers_and_which(kit_root: Path, tmp_path: Path) -> None:
    _two_layer_image(kit_root, tmp_path)
    layers = kit("layers", "cli:1", root=kit_root).stdout
    assert "C     26 B  /etc/passwd" in layers and "A      5 B  /srv/data" in layers
    data = json.loads(kit("layers", "--json", "cli:1", root=kit_root).stdout)
    assert data["wasted"] > 0 and len(data["layers"]) == 2
    found = kit("which", "cli:1", "/etc/passwd", root=kit_root).stdout
    assert "supplied by" in found and "hidden by the file" in found
    kit("run", "--name", "w", "cli:1", "/bin/sh", "-c", "echo x > /srv/data", root=kit_root)
    in_container = kit("which", "w", "/srv/data", root=kit_root).stdout
    assert "supplied by container w" in in_container
    gone = kit("which", "cli:1", "/nope", root=kit_root, check=False)
    assert gone.returncode == 1 and "not present" in gone.stdout
