"""Helpers for the image tests: make images from directories, look at merged trees.

``merged_tree`` mounts an overlay in a private mount namespace of a forked child (so nothing
is ever mounted on the host), walks it and sends back what it saw: the tree kit's containers
see, read through the real kernel's overlayfs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import kit_command

from kit.image import layer as layers
from kit.image.image import Image, new_config, write_image
from kit.image.store import Store

REPO = Path(__file__).resolve().parent.parent
BUSYBOX = "/bin/busybox"


def kit(*args: str, root: Path, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run the kit CLI in a fresh interpreter with its own KIT_ROOT (it must succeed unless
    ``check=False``)."""
    env = {**os.environ, "KIT_ROOT": str(root)}
    return kit_command(*args, check=check, cwd=REPO, env=env, timeout=120, **kw)


def busybox_tree(dest: Path, programs: tuple[str, ...] = ("sh", "ls", "cat", "echo", "id")) -> Path:
    """A minimal root: static busybox and a few applet links, /etc/passwd with a user."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, dest / "bin" / "busybox")
    for name in programs:
        os.symlink("busybox", dest / "bin" / name)
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:\n")
    return dest


def umoci_whiteout_image(layout: Path, src: Path, replacement: Path) -> Path:
    """With umoci, the image ``LAYOUT:base`` of three layers: the tree ``src`` plus
    /etc/removed and /opt/{keep/file,top}; a whiteout of /etc/removed; /opt replaced by an
    opaque directory holding only ``new`` (made here as ``replacement``). CMD /bin/sh."""
    (src / "etc" / "removed").write_text("gone soon\n")
    (src / "opt" / "keep").mkdir(parents=True)
    (src / "opt" / "keep" / "file").write_text("hidden by opaque\n")
    (src / "opt" / "top").write_text("hidden too\n")
    replacement.mkdir()
    (replacement / "new").write_text("only this\n")
    image = f"{layout}:base"
    for argv in (
        ["init", "--layout", str(layout)],
        ["new", "--image", image],
        ["insert", "--image", image, str(src), "/"],
        ["insert", "--image", image, "--whiteout", "/etc/removed"],
        ["insert", "--image", image, "--opaque", str(replacement), "/opt"],
        ["config", "--image", image, "--config.cmd", "/bin/sh"],
    ):
        done = subprocess.run(["umoci", *argv], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"umoci {' '.join(argv)}: {done.stderr}"
    return layout


def image_from_dirs(
    store: Store,
    dirs: list[Path],
    name: str,
    *,
    run: dict[str, Any] | None = None,
    compress: bool = True,
) -> Image:
    """An image whose layers are the overlay-form directories ``dirs`` (bottom first)."""
    descs = []
    config = new_config()
    for directory in dirs:
        buf = io.BytesIO()
        packed = layers.pack(directory, buf, compress=compress)
        descs.append(store.put_bytes(buf.getvalue(), packed.desc.media_type))
        config["rootfs"]["diff_ids"].append(packed.diff_id)
        config["history"].append({"created_by": f"layer {directory.name}"})
    config["config"] = run or {}
    image = write_image(store, config, descs, name)
    image.unpack()
    return image


def in_mount_namespace(function: Callable[[], Any]) -> Any:
    """Run ``function`` in a forked child with a private mount namespace; return its result.

    The child's mounts die with it: the host's mount table never changes.
    """
    from kit.linux.flags import CLONE_NEWNS, MS_PRIVATE, MS_REC
    from kit.linux.mount import mount
    from kit.linux.namespaces import unshare

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            unshare(CLONE_NEWNS)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            payload = {"ok": function()}
        except BaseException as exc:  # report everything to the parent
            payload = {"error": f"{type(exc).__name__}: {exc}"}
            code = 1
        with os.fdopen(write_end, "w") as out:
            json.dump(payload, out)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as source:
        data = source.read()
    os.waitpid(pid, 0)
    payload = json.loads(data)
    if "error" in payload:
        raise AssertionError(payload["error"])
    return payload["ok"]


def describe_tree(root: str | Path) -> dict[str, Any]:
    """path -> (type, mode, uid, gid, content hash / link target) for every entry."""
    out: dict[str, Any] = {}
    root = str(root)
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            entry: dict[str, Any] = {
                "mode": oct(stat.S_IMODE(st.st_mode)),
                "uid": st.st_uid,
                "gid": st.st_gid,
            }
            if stat.S_ISDIR(st.st_mode):
                entry["type"] = "dir"
            elif stat.S_ISLNK(st.st_mode):
                entry["type"] = "symlink"
                entry["target"] = os.readlink(full)
                entry.pop("mode")
            elif stat.S_ISREG(st.st_mode):
                entry["type"] = "file"
                with open(full, "rb") as handle:
                    entry["sha256"] = hashlib.sha256(handle.read()).hexdigest()
            else:
                entry["type"] = "special"
                entry["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            out[rel] = entry
    return out


def merged_tree(lowers_top_first: list[str], scratch: Path) -> dict[str, Any]:
    """The merged view of read-only layers, as the kernel's overlayfs shows it."""
    from kit.overlay import mount_overlay

    target = scratch / "merged-view"
    target.mkdir(exist_ok=True)

    def look() -> dict[str, Any]:
        if len(lowers_top_first) == 1:
            from kit.linux.flags import MS_BIND
            from kit.linux.mount import mount

            mount(lowers_top_first[0], str(target), None, MS_BIND)
        else:
            mount_overlay(str(target), lowers_top_first)
        return describe_tree(target)

    return in_mount_namespace(look)


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], *, gz: bool = False) -> bytes:
    """A tar archive (optionally gzip) of hand-made members: for hostile-layer tests."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def store_snapshot(root: Path) -> dict[str, Any]:
    """What a consistent store looks like from outside: blobs, layers, tags, temp files."""
    images = root / "images"
    blobs = (
        sorted(p.name for p in (images / "blobs" / "sha256").iterdir()) if images.exists() else []
    )
    layer_root = root / "layers"
    unpacked = sorted(p.name for p in layer_root.iterdir()) if layer_root.exists() else []
    index = (images / "index.json").read_text() if (images / "index.json").exists() else ""
    return {"blobs": blobs, "layers": unpacked, "index": index}


def assert_store_consistent(root: Path) -> None:
    """No temporary files, every tagged image loads, every unpacked layer has its link."""
    store = Store(root)
    for leftover in (
        [*store.blobs.glob(".*"), *store.layers.glob(".*")] if store.layers.exists() else []
    ):
        raise AssertionError(f"temporary file left in the store: {leftover}")
    for name, desc in store.tags().items():
        image = Image.load(store, desc)
        assert image.manifest.layers is not None, name
    if store.layers.exists():
        for layer in store.layers.iterdir():
            if layer.name in ("l", "init"):
                continue
            assert (layer / "link").is_file(), f"half-made layer {layer}"
