"""``kit run IMAGE``: layers + writable layer, the image config applied, --rm, diff, commit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from image_helpers import busybox_tree, image_from_dirs, kit

from kit.image.store import Store


def _container_dirs(kit_root: Path) -> list[Path]:
    base = kit_root / "run" / "containers"
    return [p for p in base.iterdir() if p.is_dir()] if base.exists() else []


@pytest.fixture
def app_image(kit_root: Path, tmp_path: Path) -> str:
    store = Store().init()
    base = busybox_tree(tmp_path / "base", ("sh", "ls", "cat", "echo", "id", "pwd", "rm", "mkdir"))
    app = tmp_path / "app"
    (app / "srv").mkdir(parents=True)
    (app / "srv" / "greeting").write_text("hello from the image\n")
    image_from_dirs(
        store,
        [base, app],
        "app:1",
        run={
            "Env": ["GREETING=image", "PATH=/bin"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING; pwd; id -u; id -g"],
            "WorkingDir": "/srv/work",
            "User": "app",
            "Hostname": "from-image",
        },
    )
    return "app:1"


def test_image_config_applies(kit_root: Path, app_image: str) -> None:
    out = kit("run", "--rm", app_image, root=kit_root).stdout.split()
    assert out == ["image", "/srv/work", "1000", "1000"]


def test_flags_override_the_image(kit_root: Path, app_image: str) -> None:
    out = kit(
        "run",
        "--rm",
        "-e",
        "GREETING=flag",
        "-w",
        "/srv",
        "-u",
        "0:50",
        app_image,
        "echo $GREETING; pwd; id -u; id -g; hostname 2>/dev/null || cat /proc/sys/kernel/hostname",
        root=kit_root,
    ).stdout.split()
    assert out == ["flag", "/srv", "0", "50", "from-image"]


def test_rm_removes_only_the_writable_layer(kit_root: Path, app_image: str) -> None:
    store = Store()
    store.init_layer()  # made on first use; shared by all containers
    layers_before = sorted(p.name for p in store.layers.iterdir())
    kit("run", "--rm", "-u", "0", app_image, "echo changed > /srv/greeting", root=kit_root)
    assert _container_dirs(kit_root) == []
    assert sorted(p.name for p in store.layers.iterdir()) == layers_before
    again = kit("run", "--rm", app_image, "cat /srv/greeting", root=kit_root).stdout
    assert again == "hello from the image\n"


def test_two_containers_share_layers_but_not_files(kit_root: Path, app_image: str) -> None:
    kit("run", "--name", "one", "-u", "0", app_image, "echo one > /srv/greeting", root=kit_root)
    kit("run", "--name", "two", "-u", "0", app_image, "echo two > /srv/greeting", root=kit_root)
    containers = kit_root / "run" / "containers"
    uppers = {}
    for directory in _container_dirs(kit_root):
        state = json.loads((directory / "state.json").read_text())
        uppers[state["name"]] = (directory / "upper" / "srv" / "greeting").read_text()
        config = json.loads((directory / "config.json").read_text())
        lowers = config["kit"]["overlay"]["lowers"]
        assert all(str(kit_root / "layers") in lower for lower in lowers)
    assert uppers == {"one": "one\n", "two": "two\n"}
    records = [json.loads((d / "image.json").read_text()) for d in _container_dirs(kit_root)]
    assert records[0]["chain_ids"] == records[1]["chain_ids"]  # the very same layers
    diff = kit("diff", "one", root=kit_root).stdout.splitlines()
    # /srv/work is the image's WorkingDir, missing from its layers: made in the writable layer
    assert diff == ["C /srv", "C /srv/greeting", "A /srv/work"]
    from kit.image.container import remove_writable_layer
    from kit.runtime.state import list_states

    one = next(s for s in list_states() if s.name == "one")
    remove_writable_layer(one.id)
    assert not (containers / one.id / "upper").exists()
    assert (containers / one.id / "state.json").exists()  # the record is issue 6's to remove


def test_diff_and_commit(kit_root: Path, app_image: str) -> None:
    kit(
        "run",
        "--name",
        "box",
        "-u",
        "0",
        app_image,
        "echo new > /srv/new; rm /bin/ls; rm -r /srv/work 2>/dev/null; mkdir -p /srv/data",
        root=kit_root,
    )
    lines = kit("diff", "box", root=kit_root).stdout.splitlines()
    assert lines == ["C /bin", "D /bin/ls", "C /srv", "A /srv/data", "A /srv/new"]
    kit("commit", "box", "app:2", root=kit_root)
    out = kit(
        "run",
        "--rm",
        "app:2",
        "cat /srv/new; ls /bin/ls 2>&1 | grep -c 'No such'",
        root=kit_root,
    ).stdout.split()
    assert out == ["new", "1"]
    history = kit("history", "app:2", root=kit_root).stdout
    assert "kit commit box" in history


def test_unknown_image(kit_root: Path) -> None:
    result = kit("run", "--rm", "nothing:here", "true", root=kit_root, check=False)
    assert result.returncode == 125
    assert "no such image: nothing:here" in result.stderr


def test_no_command_anywhere(kit_root: Path, tmp_path: Path) -> None:
    image_from_dirs(Store().init(), [busybox_tree(tmp_path / "b")], "bare:1")
    result = kit("run", "--rm", "bare:1", root=kit_root, check=False)
    assert result.returncode == 2
    assert "no Cmd or Entrypoint" in result.stderr
    assert (
        not any((kit_root / "run" / "containers").glob("*"))
        if (kit_root / "run" / "containers").exists()
        else True
    )


def test_missing_user_is_named(kit_root: Path, app_image: str) -> None:
    result = kit("run", "--rm", "-u", "nobody", app_image, "true", root=kit_root, check=False)
    assert result.returncode == 125
    assert "nobody" in result.stderr and "etc/passwd" in result.stderr


@pytest.mark.parametrize("link", ["etc", "etc/passwd"])
def test_user_names_are_never_looked_up_through_an_image_symlink(
    kit_root: Path, tmp_path: Path, link: str
) -> None:
    """An image whose /etc (or /etc/passwd) is a symlink to the host's /etc/passwd's place:
    names are resolved from the host side, before the container exists, so following it would
    read the host's own file. kit refuses and says to use numeric ids."""
    store = Store().init()
    base = busybox_tree(tmp_path / "base")
    target = base / link
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    target.symlink_to("/" + link)
    image_from_dirs(store, [base], "linked:1")
    result = kit("run", "--rm", "-u", "root", "linked:1", "id", "-u", root=kit_root, check=False)
    assert result.returncode == 125
    assert "cannot read the image's /etc/passwd" in result.stderr
    assert "numeric ids" in result.stderr
    # Numeric ids need no lookup and still work.
    numeric = kit("run", "--rm", "-u", "0", "linked:1", "id", "-u", root=kit_root)
    assert numeric.stdout == "0\n"
