"""Images in user namespaces, on the real kernel: rootless kit (uid 65534) and root's --userns.

Rootless: the user's own store (``$XDG_DATA_HOME/kit``) holds layers whose files all belong to
the user, with ``user.overlay.opaque`` marks and 0/0 character-device whiteouts; the overlay is
mounted inside the container's user namespace with ``userxattr``. Root with ``--userns``: the
init parent builds the overlay with idmapped layers before the namespace exists.

The oracle is ``umoci unpack`` (as root) of the same image, and a root ``kit run`` of it: the
trees must agree apart from ownership. See tests/unprivileged.py for how kit runs as nobody.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import host_mount_keys, kit_command, new_mounts_naming
from image_helpers import umoci_whiteout_image
from lifecycle_helpers import wait_for
from registry_fixture import Registry, start_registry
from unprivileged import NOBODY, Unprivileged, unprivileged_area, with_subordinate_ids

from kit.image.image import resolve
from kit.image.store import Store
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess
from kit.security import userns
from kit.spec import IdMapping, OverlaySpec

pytestmark = pytest.mark.usefixtures("kit_root")

#: What kit's init layer adds to every container (mount points and per-container /etc files):
#: not part of the image, left out when a container's tree is compared with umoci's.
INIT_PATHS = {
    "./proc",
    "./dev",
    "./sys",
    "./tmp",
    "./etc/hostname",
    "./etc/hosts",
    "./etc/resolv.conf",
}

#: The kit CLI in a fresh interpreter (for commands wrapped in another program).
KIT = (sys.executable, "-m", "kit")

#: Prints every path of the container's root filesystem (not below other mounts) as
#: ``path|raw mode in hex|sha256 or link target``, sorted.
LISTING = r"""
cd / && busybox find . -xdev | busybox sort | while read -r p; do
  m=$(busybox stat -c %f "$p")
  if [ -L "$p" ]; then x=$(busybox readlink "$p")
  elif [ -f "$p" ]; then set -- $(busybox sha256sum "$p"); x=$1
  else x=-; fi
  echo "$p|$m|$x"
done
"""


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def area() -> Iterator[Unprivileged]:
    with unprivileged_area() as made:
        yield made


@pytest.fixture
def user(area: Unprivileged, tmp_path: Path) -> Unprivileged:
    """A fresh HOME (so a fresh rootless store) for uid 65534 in the shared area."""
    home = area.base / f"home-{tmp_path.name}"
    (home / "run").mkdir(parents=True)
    for path in (home, home / "run"):
        path.chmod(0o700)
        os.chown(path, NOBODY, NOBODY)
    return Unprivileged(area.base, area.rootfs, home, area.python)


def _busybox_tree(dest: Path) -> None:
    (dest / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", dest / "bin" / "busybox")
    for name in ("sh", "ls", "cat", "rm", "mkdir", "echo", "id", "stat"):
        os.symlink("busybox", dest / "bin" / name)
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")


@pytest.fixture(scope="module")
def umoci_image(area: Unprivileged) -> Path:
    """An image made by umoci (as a tar anyone may read): a base layer with a root-owned and a
    uid-1000 file and a read-only directory, a whiteout layer, an opaque-directory layer."""
    work = area.base / "umoci"
    layout = work / "layout"
    src = work / "src"
    _busybox_tree(src)
    (src / "etc" / "rootfile").write_text("root's\n")
    (src / "etc" / "userfile").write_text("user 1000's\n")
    os.chown(src / "etc" / "userfile", 1000, 1000)
    (src / "ro").mkdir()
    (src / "ro" / "inside").write_text("in a 0555 directory\n")
    (src / "ro").chmod(0o555)
    umoci_whiteout_image(layout, src, work / "opt2")
    run("umoci", "unpack", "--image", f"{layout}:base", str(work / "bundle"))
    archive = area.base / "umoci.tar"
    run("tar", "-C", str(layout), "-cf", str(archive), ".")
    archive.chmod(0o644)
    return archive


def umoci_listing(area: Unprivileged) -> list[str]:
    """The LISTING lines for the tree ``umoci unpack`` made (as root, owners kept)."""
    root = area.base / "umoci" / "bundle" / "rootfs"
    lines = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                extra = run("sha256sum", full).split()[0]
            else:
                extra = "-"
            lines.append(f"./{os.path.relpath(full, root)}|{st.st_mode:x}|{extra}")
    return sorted(lines)


def image_lines(listing: str) -> list[str]:
    """LISTING output without the init layer's paths and without "." itself."""
    lines = []
    for line in listing.splitlines():
        path = line.split("|", 1)[0]
        if path != "." and path not in INIT_PATHS:
            lines.append(line)
    return sorted(lines)


def rootless_import(user: Unprivileged, archive: Path, name: str = "um:base") -> None:
    done = user.kit("import", str(archive), name)
    assert done.returncode == 0, done.stderr


def containers(run_root: Path) -> list[Path]:
    """The container directories under a run root (not the lock file beside them)."""
    return [p for p in (run_root / "containers").iterdir() if p.is_dir()]


def layer_dirs(user: Unprivileged) -> list[Path]:
    layers = user.data_dir / "kit" / "layers"
    return sorted(p for p in layers.iterdir() if p.name not in ("l", "init"))


# --- rootless: import, run, changes ----------------------------------------------------------


def test_rootless_import_and_run_show_what_umoci_and_root_show(
    user: Unprivileged, umoci_image: Path, area: Unprivileged
) -> None:
    rootless_import(user, umoci_image)
    # The store is the user's: files theirs, opaque marks as user.* xattrs, whiteouts 0/0.
    base, whiteouts, opaque = (d / "diff" for d in _by_chain(user))
    assert os.stat(base / "etc" / "userfile").st_uid == NOBODY  # squashed to the user
    removed = os.lstat(whiteouts / "etc" / "removed")
    assert stat.S_ISCHR(removed.st_mode) and removed.st_rdev == 0
    assert os.getxattr(opaque / "opt", "user.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(opaque / "opt")

    rootless = user.kit("run", "--rm", "um:base", "sh", "-c", LISTING)
    assert rootless.returncode == 0, rootless.stderr
    ours = image_lines(rootless.stdout)
    assert ours == umoci_listing(area)
    # The whiteout and the opaque directory took effect (and the listing could show them).
    paths = {line.split("|")[0] for line in ours}
    assert "./etc/removed" not in paths and "./opt/keep" not in paths and "./opt/new" in paths

    # --rm left nothing of the container (overlayfs's mode-000 work/work included).
    assert containers(user.runtime_dir / "kit") == []

    assert kit_command("import", str(umoci_image), "um:base").returncode == 0
    as_root = kit_command("run", "--rm", "um:base", "sh", "-c", LISTING)
    assert as_root.returncode == 0, as_root.stderr
    assert image_lines(as_root.stdout) == ours


def _by_chain(user: Unprivileged) -> list[Path]:
    """The user's unpacked layers, bottom first (in the image's order, not by name)."""
    store = Store(user.data_dir / "kit")
    image = resolve(store, "um:base")
    return [store.layer_path(chain) for chain in image.chain_ids]


def test_rootless_ownership_inside_is_root(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    result = user.kit(
        "run", "--rm", "um:base", "sh", "-c", "stat -c '%u %g' /etc/rootfile /etc/userfile /ro"
    )
    assert result.returncode == 0, result.stderr
    # Every file of the user's store belongs to the user, who is root in the container:
    # umoci's uid 1000 file is squashed (kit maps only the user's own id here).
    assert result.stdout.split("\n")[:3] == ["0 0", "0 0", "0 0"]


def test_rootless_changes_land_in_the_users_upper_dir(
    user: Unprivileged, umoci_image: Path
) -> None:
    rootless_import(user, umoci_image)
    layers_before = {p.name: sorted(os.listdir(p / "diff")) for p in layer_dirs(user)}
    script = (
        "echo more >> /etc/rootfile && rm /etc/passwd && rm -r /opt && mkdir /opt && "
        "echo fresh > /opt/fresh && echo new > /new && chmod 0700 /ro && echo x > /ro/added"
    )
    result = user.kit("run", "--name", "box", "um:base", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    (container,) = containers(user.runtime_dir / "kit")
    upper = container / "upper"
    # Copy-up: the changed file is a full copy in the upper dir, the user's; the layer is intact.
    assert (upper / "etc" / "rootfile").read_text() == "root's\nmore\n"
    assert os.stat(upper / "etc" / "rootfile").st_uid == NOBODY
    assert (_by_chain(user)[0] / "diff" / "etc" / "rootfile").read_text() == "root's\n"
    # The deletion is a whiteout (char device 0/0), made by the unprivileged overlay.
    gone = os.lstat(upper / "etc" / "passwd")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0 and gone.st_uid == NOBODY
    # The replaced directory is opaque with overlay's user.* mark (userxattr), not trusted.*.
    assert os.getxattr(upper / "opt", "user.overlay.opaque") == b"y"
    assert not any(n.startswith("trusted.") for n in os.listxattr(upper / "opt"))
    assert sorted(os.listdir(upper / "opt")) == ["fresh"]
    assert (upper / "new").read_text() == "new\n"

    diff = user.kit("diff", "box")
    assert diff.returncode == 0, diff.stderr
    lines = diff.stdout.splitlines()
    assert "D /etc/passwd" in lines and "A /new" in lines and "C /etc/rootfile" in lines
    assert any(line.startswith("C /opt") and "opaque" in line for line in lines)

    # kit rm removes the writable layer (overlay's mode-000 work/work and the 0700 /ro copy
    # included) and nothing of the image.
    removed = user.kit("rm", "box")
    assert removed.returncode == 0, removed.stderr
    assert not container.exists()
    assert {p.name: sorted(os.listdir(p / "diff")) for p in layer_dirs(user)} == layers_before
    again = user.kit("run", "--rm", "um:base", "cat", "/etc/rootfile")
    assert again.returncode == 0 and again.stdout == "root's\n", again.stderr


def test_rootless_rmi_removes_read_only_directories(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    ro = _by_chain(user)[0] / "diff" / "ro"
    assert stat.S_IMODE(os.stat(ro).st_mode) == 0o555 and os.listdir(ro) == ["inside"]
    done = user.kit("rmi", "um:base")
    assert done.returncode == 0, done.stderr
    assert layer_dirs(user) == []  # the user could not have deleted ro/inside without chmod


def test_rootless_commit_records_container_ids(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    made = user.kit("run", "--name", "c", "um:base", "sh", "-c", "echo n > /made")
    assert made.returncode == 0, made.stderr
    committed = user.kit("commit", "c", "um:2")
    assert committed.returncode == 0, committed.stderr
    assert os.stat(user.runtime_dir / "kit" / "containers").st_uid == NOBODY
    # On disk /made is the user's (uid 65534); the image says root's, as the container saw it.
    store = Store(user.data_dir / "kit")
    image = resolve(store, "um:2")
    blob = store.read_blob(image.manifest.layers[-1])
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar}
    assert owners["made"] == (0, 0)
    assert user.kit("rm", "c").returncode == 0


def test_rootless_drops_xattrs_only_root_may_set(user: Unprivileged, area: Unprivileged) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo("ping")
        info.size, info.mode = len(data), 0o755
        info.pax_headers = {
            "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
            "SCHILY.xattr.user.note": "kept",
        }
        tar.addfile(info, io.BytesIO(data))
        # overlayfs's own marks are never taken from a layer (only from .wh..wh..opq).
        tar.addfile(_dir_with_xattrs("d", {"SCHILY.xattr.user.overlay.opaque": "y"}))
        tar.addfile(_dir_with_xattrs("e", {"LIBARCHIVE.xattr.user%2Eoverlay%2Eopaque": "eQ"}))
    archive = area.base / f"xattr-{user.home.name}.tar"
    _oci_archive(archive, layer.getvalue())
    rootless_import(user, archive, "caps:1")
    (layer_dir,) = layer_dirs(user)
    names = os.listxattr(layer_dir / "diff" / "ping")
    assert "user.note" in names and "security.capability" not in names
    assert os.listxattr(layer_dir / "diff" / "d") == os.listxattr(layer_dir / "diff" / "e") == []


def _dir_with_xattrs(name: str, headers: dict[str, str]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    info.pax_headers = headers
    return info


def test_layers_never_set_overlay_marks_as_root(tmp_path: Path) -> None:
    from kit.image import layer as layers
    from kit.image import media
    from kit.image.digest import sha256_bytes
    from kit.image.documents import Descriptor

    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(
            _dir_with_xattrs(
                "d",
                {
                    "SCHILY.xattr.trusted.overlay.opaque": "y",
                    "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                    "SCHILY.xattr.user.note": "kept",
                },
            )
        )
    data = blob.getvalue()
    dest = tmp_path / "layer"
    dest.mkdir()
    desc = Descriptor(media.OCI_LAYER, sha256_bytes(data), len(data))
    report = layers.unpack(io.BytesIO(data), desc, dest)
    assert os.listxattr(dest / "d") == ["user.note"]
    assert report.dropped_xattrs == 2


def _oci_archive(path: Path, layer: bytes) -> None:
    """A one-layer OCI layout tar, as `kit import` reads it."""
    from kit.image import media
    from kit.image.digest import sha256_bytes
    from kit.image.documents import REF_NAME, canonical

    def blob(data: bytes) -> tuple[str, bytes]:
        return sha256_bytes(data), data

    layer_digest, _ = blob(layer)
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {"Cmd": ["/ping"]},
        }
    )
    config_digest, _ = blob(config)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": media.OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    )
    manifest_digest, _ = blob(manifest)
    index = canonical(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": media.OCI_MANIFEST,
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "annotations": {REF_NAME: "1"},
                }
            ],
        }
    )
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", index),
            *(
                (f"blobs/sha256/{d.split(':')[1]}", b)
                for d, b in (blob(layer), blob(config), blob(manifest))
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.chmod(0o644)


# --- a store belongs to one user -----------------------------------------------------------------


def test_rootless_refuses_roots_store(user: Unprivileged, umoci_image: Path) -> None:
    # Root's store where nobody may reach it, as a careless KIT_ROOT would share it: its layers
    # carry trusted.overlay.opaque, which a rootless overlay neither sees nor may set.
    shared = user.base / f"roots-store-{user.home.name}"
    shared.mkdir(mode=0o755)
    try:
        env = {**os.environ, "KIT_ROOT": str(shared)}
        assert kit_command("import", str(umoci_image), "um:base", env=env).returncode == 0
        result = user.kit("run", "--rm", "um:base", "true", env_extra={"KIT_ROOT": str(shared)})
        assert result.returncode != 0
        assert "is root's" in result.stderr and "trusted.overlay.opaque" in result.stderr
        assert "$XDG_DATA_HOME/kit" in result.stderr  # the fix: the user's own store
        assert not (shared / "run" / "containers").exists() or not any(
            (shared / "run" / "containers").iterdir()
        )
    finally:
        shutil.rmtree(shared)


def test_root_refuses_a_rootless_store(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    store = user.data_dir / "kit"
    result = kit_command(
        "run", "--rm", "um:base", "true", env={**os.environ, "KIT_ROOT": str(store)}
    )
    assert result.returncode != 0
    assert f"belongs to an ordinary user (uid {NOBODY})" in result.stderr
    assert "user.overlay.opaque" in result.stderr
    # Nothing of root's landed in the user's store.
    assert all(p.stat().st_uid == NOBODY for p in store.rglob("*") if not p.is_symlink())


# --- rootless build ------------------------------------------------------------------------------


def test_rootless_build_with_a_run_step(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    context = user.base / f"context-{user.home.name}"
    context.mkdir()
    (context / "note").write_text("copied\n")
    (context / "Kitfile").write_text(
        "FROM um:base\n"
        "COPY note /srv/note\n"
        "RUN echo built > /built && rm /etc/rootfile && rm -r /opt && mkdir /opt && "
        "echo o > /opt/only && id -u > /srv/uid\n"
        'CMD ["/bin/sh"]\n'
    )
    for path in (context, *context.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    built = user.kit("build", "-t", "made:1", str(context))
    assert built.returncode == 0, built.stderr
    shown = user.kit(
        "run",
        "--rm",
        "made:1",
        "sh",
        "-c",
        "cat /built /srv/note /srv/uid; ls /opt; ls /etc/rootfile 2>&1; stat -c %u /built",
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:4] == ["built", "copied", "0", "only"]  # RUN ran as root inside
    assert "No such file" in lines[4] and lines[5] == "0"
    # The layers record what the containers saw: root's files, a whiteout, an opaque /opt.
    store = Store(user.data_dir / "kit")
    image = resolve(store, "made:1")
    members = {}
    for desc in image.manifest.layers[-2:]:
        with tarfile.open(fileobj=io.BytesIO(store.read_blob(desc))) as tar:
            members.update({m.name: (m.uid, m.gid) for m in tar})
    assert members["built"] == members["srv/note"] == (0, 0)
    assert "etc/.wh.rootfile" in members and "opt/.wh..wh..opq" in members
    # Nothing is left behind from the RUN step's container (its work/work is mode 000).
    assert not [p for p in (store.layers).iterdir() if p.name.startswith(".")]
    again = user.kit("build", "-t", "made:1", str(context))
    assert again.returncode == 0 and again.stderr.count("using cache") == 2, again.stderr
    shutil.rmtree(context)


# --- root's container in a user namespace ---------------------------------------------------------


def test_root_userns_image_run(kit_root: Path, umoci_image: Path) -> None:
    assert kit_command("import", str(umoci_image), "um:base").returncode == 0
    script = (
        "id -u; stat -c %u /etc/rootfile /etc/userfile; "
        "echo more >> /etc/rootfile && echo wrote-root; "
        "echo more >> /etc/userfile || echo denied-user; "
        "echo new > /new && rm /etc/passwd && echo done"
    )
    result = kit_command("run", "--name", "u", "--userns", "um:base", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Root inside is nobody outside; through the idmapped layers, the image's root-owned file
    # is the container root's, while uid 1000 has no mapping here and shows as the overflow id.
    assert lines[:3] == ["0", "0", str(NOBODY)]
    # Root inside may change its own file: overlayfs copies it up into the writable layer,
    # where it belongs to the container's root as the host knows it (nobody). A file of an
    # unmapped owner stays out of reach: capabilities in a user namespace only count for
    # ids it maps.
    assert lines[3:] == ["wrote-root", "denied-user", "done"]
    assert "Permission denied" in result.stderr
    (container,) = containers(kit_root / "run")
    upper = container / "upper"
    assert (upper / "etc" / "rootfile").read_text() == "root's\nmore\n"
    assert os.stat(upper / "etc" / "rootfile").st_uid == NOBODY
    assert os.stat(upper / "new").st_uid == NOBODY
    assert stat.S_ISCHR(os.lstat(upper / "etc" / "passwd").st_mode)
    assert not (upper / "etc" / "userfile").exists()
    # The image's layer is untouched.
    store = Store(kit_root)
    base = store.diff_path(resolve(store, "um:base").chain_ids[0])
    assert (base / "etc" / "rootfile").read_text() == "root's\n"
    # kit commit records the ids the container saw (0), not the host's (65534).
    assert kit_command("commit", "u", "um:u").returncode == 0
    image = resolve(store, "um:u")
    with tarfile.open(fileobj=io.BytesIO(store.read_blob(image.manifest.layers[-1]))) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar}
    assert owners["new"] == owners["etc/rootfile"] == (0, 0)
    assert kit_command("rm", "u").returncode == 0
    assert not container.exists()


def test_root_userns_with_subordinate_ranges_keeps_image_owners(
    umoci_image: Path, area: Unprivileged, tmp_path: Path
) -> None:
    # With ranges for root in /etc/subuid (bound over the real file in a private mount
    # namespace), container uid N is host uid 100000+N, and the idmapped layers show the
    # image's uid-1000 file as uid 1000: root inside may write it like any root.
    prefix = with_subordinate_ids(area.base / f"subuid-root-{tmp_path.name}", "root:100000:65536")
    assert kit_command("import", str(umoci_image), "um:base").returncode == 0
    script = (
        "cat /proc/self/uid_map; stat -c %u /etc/userfile; echo more >> /etc/userfile && echo ok"
    )
    result = subprocess.run(
        [*prefix, *KIT, "run", "--rm", "--userns", "um:base", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1:] == ["1000", "ok"]


@pytest.mark.parametrize("idmap", [True, False], ids=["idmapped", "plain"])
def test_root_userns_idmapped_layers_make_image_files_the_containers(
    kit_root: Path, tmp_path: Path, umoci_image: Path, idmap: bool
) -> None:
    # The control: without idmapped layers, the image's root-owned files belong to host root,
    # which has no mapping in the container's namespace: root inside may not change them.
    assert kit_command("import", str(umoci_image), "um:base").returncode == 0
    store = Store(kit_root)
    image = resolve(store, "um:base")
    upper, work = tmp_path / "upper", tmp_path / "work"
    for directory in (upper, work):
        directory.mkdir()
    spec = default_spec(
        ["sh", "-c", "stat -c %u /etc/rootfile; echo more >> /etc/rootfile && echo wrote"],
        str(tmp_path / "merged"),
    )
    spec.kit.overlay = OverlaySpec(
        lowers=[str(store.init_layer()), *image.lower_dirs()],
        upper=str(upper),
        work=str(work),
        idmap=idmap,
    )
    userns.enable(spec)
    owner = userns.root_on_host(spec)
    assert owner == (NOBODY, NOBODY)
    os.chown(upper, *owner)
    with ContainerProcess(spec, capture=True) as container:
        status = container.wait()
    out = status.stdout.decode().split()
    if idmap:
        assert status.code == 0, status.error
        assert out == ["0", "wrote"]
    else:
        assert status.code != 0 and out == [str(NOBODY)]
        assert "Permission denied" in status.stderr.decode()
        assert not (upper / "etc" / "rootfile").exists()


# --- id translation ------------------------------------------------------------------------------


def test_id_translation_back_to_container_ids() -> None:
    back = userns.IdTranslation(
        [IdMapping(0, 1000, 1), IdMapping(1, 300000, 65536)], [IdMapping(0, 1000, 1)]
    )
    assert back(1000, 1000) == (0, 0)
    assert back(300000, 1000) == (1, 0)
    assert back(301000, 5) == (1001, 5)  # gid 5 outside the gid map stays as it is
    assert userns.container_ids(default_spec(["true"], "/")) is None  # no user namespace


# --- rootless with subordinate ids ---------------------------------------------------------------


def test_rootless_rm_removes_files_of_subordinate_ids(
    user: Unprivileged, umoci_image: Path
) -> None:
    if userns.helper("newuidmap") is None or userns.helper("newgidmap") is None:
        pytest.skip("newuidmap/newgidmap (package uidmap) are not installed setuid")
    # Give nobody subordinate ranges (in a private mount namespace: the host keeps its files).
    prefix = with_subordinate_ids(user.base / f"subuid-{user.home.name}", "nobody:300000:65536")
    rootless_import(user, umoci_image)
    script = "mkdir -p /data/sub && echo f > /data/sub/f && busybox chown -R 1000:1000 /data"
    made = user.kit("run", "--name", "sub", "um:base", "sh", "-c", script, prefix=prefix)
    assert made.returncode == 0, made.stderr
    (container,) = containers(user.runtime_dir / "kit")
    data = container / "upper" / "data"
    # Container uid 1000 is host uid 300999 (uid 1 is 300000): not the user's to touch.
    assert os.stat(data / "sub").st_uid == 300999
    as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    plain = subprocess.run([*as_user, "rm", "-rf", str(data)], capture_output=True, check=False)
    assert plain.returncode != 0 and (data / "sub" / "f").exists()
    # kit rm removes them from inside a user namespace with the container's maps.
    removed = user.kit("rm", "sub", prefix=prefix)
    assert removed.returncode == 0, removed.stderr
    assert not container.exists()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    yield from start_registry(tmp_path / "registry")


def test_rootless_pull_and_run(user: Unprivileged, umoci_image: Path, registry: Registry) -> None:
    registry.push(f"oci:{user.base / 'umoci' / 'layout'}:base", "tools/um:1")
    ref = f"{registry.host}/tools/um:1"
    pulled = user.kit("pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    shown = user.kit("run", "--rm", ref, "sh", "-c", "ls /opt; cat /etc/removed 2>&1")
    assert shown.returncode != 0  # cat fails: the whiteout hides the file
    lines = shown.stdout.splitlines()
    assert lines[0] == "new" and "No such file" in lines[1]
    (opaque,) = [
        d / "diff" / "opt" for d in layer_dirs(user) if (d / "diff" / "opt" / "new").exists()
    ]
    assert os.getxattr(opaque, "user.overlay.opaque") == b"y"


def test_root_userns_layers_that_cannot_be_idmapped(tmp_path: Path, busybox_rootfs: Path) -> None:
    # ramfs refuses idmapped mounts: kit says so and builds the overlay without them; the
    # image's root-owned files then belong to an unmapped id inside, out of root's reach.
    ram = tmp_path / "ram"
    ram.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(ram)], check=True)
    try:
        (ram / "etc").mkdir()
        (ram / "etc" / "rootfile").write_text("root's\n")
        upper, work = tmp_path / "upper", tmp_path / "work"
        for directory in (upper, work):
            directory.mkdir()
        spec = default_spec(
            ["sh", "-c", "stat -c %u /etc/rootfile; echo more >> /etc/rootfile && echo wrote"],
            str(tmp_path / "merged"),
        )
        spec.kit.overlay = OverlaySpec(
            lowers=[str(ram), str(busybox_rootfs)], upper=str(upper), work=str(work)
        )
        userns.enable(spec)
        os.chown(upper, NOBODY, NOBODY)
        with ContainerProcess(spec, capture=True) as container:
            status = container.wait()
            said = [e.message or "" for e in container.events]
    finally:
        subprocess.run(["umount", str(ram)], check=True)
    assert any("cannot be idmapped" in message for message in said)
    assert status.code != 0 and status.stdout.decode().split() == [str(NOBODY)]
    assert "Permission denied" in status.stderr.decode()


# --- rootless export and cp ----------------------------------------------------------------------

#: Changes a container makes before it is exported: a new file, a whiteout, an opaque directory,
#: a file made in a read-only image directory, and symlinks that name host paths.
CHANGES = (
    "echo new > /new && rm /etc/passwd && rm -r /opt && mkdir /opt && echo f > /opt/f && "
    "chmod 0700 /ro && echo x > /ro/added && ln -s /etc /hostetc && ln -s / /hostroot && "
    "ln -s /tmp /hosttmp && touch /ready"
)


def exported(argv: list[str], **options: object) -> dict[str, tuple[object, ...]]:
    """``kit export``'s tar as {name: (type, mode, link target, sha256)}, owners left out."""
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False, **options)
    assert done.returncode == 0, done.stderr.decode()
    tree: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        for member in tar:
            data = tar.extractfile(member) if member.isreg() else None
            digest = hashlib.sha256(data.read()).hexdigest() if data else None
            tree[member.name.rstrip("/")] = (member.type, member.mode, member.linkname, digest)
            tree.setdefault("owners", set()).add((member.uid, member.gid))  # type: ignore[union-attr]
    return tree


def upper_of(run_root: Path, name: str) -> Path:
    """The writable layer of the container ``name`` under a run root."""
    for path in (run_root / "containers").glob("*/state.json"):
        if json.loads(path.read_text())["name"] == name:
            return path.parent / "upper"
    raise AssertionError(f"no container {name} under {run_root}")


def status(inspected: subprocess.CompletedProcess[str]) -> str:
    """The State.Status of ``kit inspect``'s answer."""
    assert inspected.returncode == 0, inspected.stderr
    return str(json.loads(inspected.stdout)[0]["State"]["Status"])


def test_rootless_export_matches_root_running_and_stopped(
    user: Unprivileged, umoci_image: Path, kit_root: Path
) -> None:
    rootless_import(user, umoci_image)
    assert kit_command("import", str(umoci_image), "um:base").returncode == 0
    script = f"{CHANGES}; sleep 1000"
    as_user = user.kit("run", "-d", "--name", "live", "um:base", "sh", "-c", script)
    assert as_user.returncode == 0, as_user.stderr
    as_root = kit_command("run", "-d", "--name", "live", "um:base", "sh", "-c", script)
    assert as_root.returncode == 0, as_root.stderr
    try:
        user_upper = upper_of(user.runtime_dir / "kit", "live")
        root_upper = upper_of(kit_root / "run", "live")
        wait_for(lambda: (user_upper / "ready").exists() and (root_upper / "ready").exists())
        before = host_mount_keys()
        rootless_running = exported(user.command("export", "live"), cwd="/")
        root_running = exported([*KIT, "export", "live"])
        for kill in (user.kit("kill", "live"), kit_command("kill", "live")):
            assert kill.returncode == 0, kill.stderr
        wait_for(lambda: status(user.kit("inspect", "live")) == "stopped", what="a stop")
        wait_for(lambda: status(kit_command("inspect", "live")) == "stopped", what="a stop")
        rootless_stopped = exported(user.command("export", "live"), cwd="/")
        root_stopped = exported([*KIT, "export", "live"])
        # Detached mounts only, never attached (other sessions' mounts come and go meanwhile).
        assert new_mounts_naming(before, user.base, kit_root) == []
    finally:
        user.kit("rm", "-f", "live")
        kit_command("rm", "-f", "live")
    # The same files, modes, link targets and contents, running or stopped, root or not.
    owners = {id(tree): tree.pop("owners") for tree in (root_running, root_stopped)}
    assert all((1000, 1000) in found for found in owners.values())  # umoci's uid-1000 file ...
    for tree in (rootless_running, rootless_stopped):
        # ... squashed in the user's store: everything belongs to root inside.
        assert tree.pop("owners") == {(0, 0)}
    for tree in (rootless_running, rootless_stopped, root_stopped):
        assert tree == root_running
    # The changes are there: whiteout and opaque directory applied, symlinks kept as symlinks.
    assert "new" in root_running and "etc/passwd" not in root_running
    assert "opt/keep" not in root_running and "opt/f" in root_running
    assert root_running["hostetc"][2] == "/etc" and root_running["hostroot"][2] == "/"
    assert not any(name.startswith(("hostetc/", "hostroot/")) for name in root_running)


def test_rootless_cp_in_and_out_of_a_stopped_image_container(
    user: Unprivileged, umoci_image: Path
) -> None:
    rootless_import(user, umoci_image)
    made = user.kit("run", "--name", "idle", "um:base", "sh", "-c", CHANGES)
    assert made.returncode == 0, made.stderr
    upper = upper_of(user.runtime_dir / "kit", "idle")
    outside = user.base / f"cp-{user.home.name}"
    outside.mkdir()
    note = outside / "note"
    note.write_text("from the host\n")
    os.chown(outside, NOBODY, NOBODY)
    before = host_mount_keys()
    try:
        # In: a new file, and one over an image file (copied up into the user's layer).
        for dest in ("idle:/srv-note", "idle:/etc/rootfile"):
            done = user.kit("cp", str(note), dest)
            assert done.returncode == 0, done.stderr
        assert (upper / "srv-note").read_text() == "from the host\n"
        assert (upper / "etc" / "rootfile").read_text() == "from the host\n"
        assert os.stat(upper / "srv-note").st_uid == NOBODY  # the container's root, outside
        assert (_by_chain(user)[0] / "diff" / "etc" / "rootfile").read_text() == "root's\n"
        # Out: the container's files as it sees them (its change, and the image's file).
        for source, name in (("idle:/new", "new"), ("idle:/etc/userfile", "userfile")):
            done = user.kit("cp", source, str(outside / name))
            assert done.returncode == 0, done.stderr
        assert (outside / "new").read_text() == "new\n"
        assert (outside / "userfile").read_text() == "user 1000's\n"
        # Symlinks that name host paths lead into the container, never to the host.
        marker = f"kit-rootless-cp-{uuid.uuid4().hex}"
        (outside / marker).write_text("planted\n")
        done = user.kit("cp", str(outside / marker), "idle:/hosttmp/")
        assert done.returncode == 0, done.stderr
        assert not Path("/tmp", marker).exists()
        assert (upper / "tmp" / marker).read_text() == "planted\n"
        done = user.kit("cp", "idle:/hostroot/etc/rootfile", str(outside / "through-link"))
        assert done.returncode == 0, done.stderr
        assert (outside / "through-link").read_text() == "from the host\n"  # the container's
        done = user.kit("cp", "idle:/hostetc/passwd", str(outside / "passwd"))
        assert done.returncode != 0 and "no such file in the container" in done.stderr
        assert not (outside / "passwd").exists()  # the host's /etc/passwd was not read
        assert new_mounts_naming(before, user.base) == []
    finally:
        assert user.kit("rm", "idle").returncode == 0
        shutil.rmtree(outside)
    # The image's layers are untouched by all of it.
    again = user.kit("run", "--rm", "um:base", "cat", "/etc/rootfile")
    assert again.returncode == 0 and again.stdout == "root's\n", again.stderr


def test_rootless_export_of_a_rootfs_container(user: Unprivileged) -> None:
    # The user's own root filesystem (a copy of the shared one, made theirs).
    rootfs = user.base / f"rootfs-{user.home.name}"
    shutil.copytree(user.rootfs, rootfs, symlinks=True)
    subprocess.run(["chown", "-R", "--no-dereference", f"{NOBODY}:{NOBODY}", str(rootfs)])
    made = user.kit("run", "--name", "plain", "--rootfs", str(rootfs), "true")
    assert made.returncode == 0, made.stderr
    # A root filesystem root built: its /etc/shadow (0600, root's) is not the user's to read.
    roots = user.kit("run", "--name", "roots", "--rootfs", str(user.rootfs), "true")
    assert roots.returncode == 0, roots.stderr
    try:
        ours = exported(user.command("export", "plain"), cwd="/")
        refused = user.kit("export", "roots", text=False)
    finally:
        assert user.kit("rm", "plain").returncode == 0
        assert user.kit("rm", "roots").returncode == 0
        shutil.rmtree(rootfs)
    assert ours.pop("owners") == {(0, 0)}
    listing = subprocess.run(
        ["tar", "-C", str(user.rootfs), "-cf", "-", "."], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(listing)) as theirs:
        expected = {n.removeprefix("./").rstrip("/") for n in theirs.getnames()} - {"", "."}
    assert set(ours) == expected
    said = refused.stderr.decode()
    assert refused.returncode == 1 and "cannot read /etc/shadow in the container" in said
    assert "EACCES" in said and "owned by uid 0 on the host" in said


def test_rootless_export_says_why_the_helper_failed(user: Unprivileged, umoci_image: Path) -> None:
    rootless_import(user, umoci_image)
    made = user.kit("run", "--name", "broken", "um:base", "echo")
    assert made.returncode == 0, made.stderr
    upper = upper_of(user.runtime_dir / "kit", "broken")
    work = upper.parent / "work"
    shutil.rmtree(work)  # overlayfs refuses to mount without its work directory
    try:
        done = user.kit("export", "broken", text=False)
        assert done.returncode == 1 and done.stdout == b""
        said = done.stderr.decode()
        # The helper's own error (overlayfs's refusal, explained), not just "a helper failed".
        assert "workdir" in said and "ENOENT" in said, said
    finally:
        work.mkdir()
        os.chown(work, NOBODY, NOBODY)
        assert user.kit("rm", "broken").returncode == 0
