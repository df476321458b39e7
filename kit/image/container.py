"""A container's own layer: the writable ``upper`` directory on top of an image's layers.

::

    <container dir>/upper     every file the container creates or changes (and whiteouts)
    <container dir>/work      overlayfs's scratch directory (same filesystem as upper)
    <container dir>/merged    where the overlay is mounted, inside the container only
    <container dir>/image.json which image it came from (for diff, commit, which, rmi)

The image's layers are shared by every container made from it and never change; removing a
container removes exactly this directory's layer and nothing of the image (``kit rm``,
``kit run --rm``).

:func:`apply_image_config` turns the image's config (Env, Entrypoint, Cmd, WorkingDir, User)
into the container spec, the way ``docker run`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.image.image import Image
from kit.overlay import MAX_LAYERS, is_whiteout
from kit.removal import remove_tree
from kit.runtime import state
from kit.spec import OverlaySpec, Spec


@dataclass
class WritableLayer:
    """Where one container's writable layer lives."""

    directory: Path

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def merged(self) -> Path:
        return self.directory / "merged"

    @property
    def record(self) -> Path:
        return self.directory / "image.json"


def writable_layer(container_id: str) -> WritableLayer:
    return WritableLayer(state.container_dir(container_id))


def create_writable_layer(
    container_id: str,
    image: Image,
    *,
    workdir: str = "/",
    owner: tuple[int, int] | None = None,
) -> OverlaySpec:
    """Make the container's upper/work/merged directories; return the overlay to mount.

    A working directory the image lacks is created in the writable layer (as Docker does).
    ``owner``: the host uid and gid of the container's root when it runs in a user namespace
    (see :func:`kit.security.userns.root_on_host`); the upper directory and what kit puts in
    it belong to them, so the container's root may create files in its own ``/``.
    """
    userxattr = image.store.userxattr  # also refuses another kind of user's store
    layer = writable_layer(container_id)
    layer.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in (layer.upper, layer.work, layer.merged):
        directory.mkdir(mode=0o755, exist_ok=True)
    info = {
        "image": image.id,
        "manifest": image.desc.digest,
        "name": image.names[0] if image.names else image.short_id,
        "chain_ids": image.chain_ids,
    }
    layer.record.write_text(json.dumps(info, indent=2) + "\n")
    lowers = image.lower_dirs()
    if len(lowers) < MAX_LAYERS:  # overlay stacks 500 lowers at most: the init layer is extra
        lowers = [str(image.store.init_layer()), *lowers]
    made = [layer.upper]
    if workdir.strip("/") and find_in_layers(lowers, workdir) is None:
        path = layer.upper
        for part in workdir.strip("/").split("/"):
            path = path / part
            if not path.exists():
                path.mkdir(mode=0o755)
                made.append(path)
    if owner is not None and owner != (os.geteuid(), os.getegid()):
        for path in made:
            os.lchown(path, *owner)
    return OverlaySpec(
        lowers=lowers, upper=str(layer.upper), work=str(layer.work), userxattr=userxattr
    )


def remove_writable_layer(container_id: str) -> None:
    """Delete the container's writable layer (its changes); the image's layers stay."""
    layer = writable_layer(container_id)
    spec = None
    with contextlib.suppress(KitError):
        spec = state.load_spec(container_id)  # whose ids its files may have (rootless)
    for directory in (layer.upper, layer.work, layer.merged):
        remove_tree(directory, spec=spec)
    layer.record.unlink(missing_ok=True)


def image_record(container_id: str) -> dict[str, Any]:
    """What :func:`create_writable_layer` recorded, or a KitError for non-image containers."""
    path = writable_layer(container_id).record
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(
            f"container {container_id[:12]} was not made from an image",
            cause="it runs on a plain root filesystem (--rootfs), which has no layers",
            fix="use a container started with `kit run IMAGE`",
        ) from None


def layers_in_use() -> set[str]:
    """Chain ids that existing containers stand on (kept by ``kit rmi``)."""
    used: set[str] = set()
    base = state.containers_dir()
    if not base.is_dir():
        return used
    for entry in base.iterdir():
        try:
            used |= set(json.loads((entry / "image.json").read_text())["chain_ids"])
        except (OSError, ValueError, KeyError):
            continue
    return used


# --- the image's config applied to a spec --------------------------------------------------


def apply_image_config(
    spec: Spec,
    image: Image,
    *,
    command: list[str],
    user: str | None,
    workdir: str | None,
    user_env: list[str],
    hostname_given: bool,
) -> None:
    """Env, Entrypoint/Cmd, WorkingDir, User (and Hostname) from the image, under the flags."""
    config = image.config.run
    env = [e for e in config.get("Env") or [] if isinstance(e, str) and "=" in e]
    # The image's variables override kit's defaults; -e overrides both (last one wins).
    spec.process.env = [*spec.process.env, *env, *user_env]
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = command or list(config.get("Cmd") or [])
    spec.process.args = entrypoint + cmd
    if not spec.process.args:
        raise KitError(
            f"no command given, and image {image.names[0] if image.names else image.short_id} "
            "has no Cmd or Entrypoint",
            fix="add the command after the image name, e.g. kit run IMAGE /bin/sh",
            exit_code=2,
        )
    spec.process.cwd = workdir or config.get("WorkingDir") or "/"
    name = user if user is not None else config.get("User") or ""
    if name:
        uid, gid = lookup_user(image.lower_dirs(), str(name))
        spec.process.user.uid, spec.process.user.gid = uid, gid
    hostname = config.get("Hostname")
    if hostname and not hostname_given:
        spec.hostname = str(hostname)


def lookup_user(lowers: list[str], text: str) -> tuple[int, int]:
    """``UID[:GID]`` or ``NAME[:GROUP]`` resolved through the image's /etc/passwd and group."""
    user, _, group = text.partition(":")

    def find(name: str, file: str, what: str) -> tuple[int, int]:
        if name.isdigit():
            return int(name), -1
        for line in _read_config(find_in_layers(lowers, file), file).splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == name:
                if not (fields[2].isdigit() and fields[3].isdigit()):
                    raise KitError(
                        f"the image's /{file} gives {what} {name!r} ids that are not numbers",
                        cause=f"its line reads {line!r}",
                        fix=f"use a numeric id, or repair /{file} in the image",
                        exit_code=125,
                    )
                return int(fields[2]), int(fields[3]) if what == "user" else -1
        raise KitError(
            f"unable to find {what} {name!r} in the image's /{file}",
            fix=f"use a numeric id, or add the {what} to the image",
            exit_code=125,
        )

    uid, primary = find(user, "etc/passwd", "user")
    gid = find(group, "etc/group", "group")[0] if group else (primary if primary >= 0 else uid)
    return uid, gid


def _read_config(path: Path | None, file: str) -> str:
    """The text of an image's configuration file, read from the host side: never through a
    symlink (an image's ``/etc -> /etc`` would lead to the host's own file) and only from a
    regular file (a FIFO would block the read forever)."""
    if path is None:
        return ""
    unusable = KitError(
        f"kit cannot read the image's /{file} from the host",
        cause=f"{path} is a symlink or not a regular file; kit resolves names before the "
        "container exists and never follows an image's symlinks on the host",
        fix="give numeric ids (-u UID[:GID]), or make the file a regular file in the image",
        exit_code=125,
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ELOOP: a symlink
        raise unusable from None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise unusable
        return f.read().decode(errors="replace")


def find_in_layers(lowers: list[str], path: str) -> Path | None:
    """The entry a merged view shows at ``path`` (top layer first), whiteouts obeyed.

    Symlinks are never followed: an absolute one would lead out of the image into the host.
    If one stands at or above ``path``, it is returned instead (a container resolves it
    inside its own root; use :mod:`kit.layers_view` for the full story of a path).
    """
    parts = [p for p in path.split("/") if p]
    for lower in lowers:
        for depth in range(1, len(parts) + 1):
            step = Path(lower, *parts[:depth])
            try:
                st = os.lstat(step)
            except OSError:
                break
            if is_whiteout(st):
                return None  # whited out here: lower layers do not count
            if stat.S_ISLNK(st.st_mode):
                return step
        else:
            return Path(lower, *parts)
    return None
