"""``kit build``: run a Kitfile, one layer per filesystem-changing instruction.

Each ``COPY``/``ADD`` step builds its files in a fresh directory; each ``RUN`` step runs in a
real container whose root is an overlay of the layers so far plus an empty upper directory,
and that upper directory, whiteouts and all, *is* the new layer. The layer is packed as a
tar (see :mod:`kit.image.layer`), stored by digest, and unpacked into the store so the next
step can stand on it.

**Cache.** Every step has a key: the hash of the previous step's key, the instruction as
written, and (for COPY/ADD) the names, modes and contents of its source files. A step whose
key was built before reuses that layer without running; change a file or a line and every
step from there on is built again, exactly like Docker's build cache.

**Rootless.** Run by an ordinary user, a RUN step's container gets a user namespace (its root
is the user) and its overlay is mounted inside it with ``userxattr``, as ``kit run`` does. The
files the user writes (RUN's upper directory, COPY's tree) belong to the user on disk; the
layer records them as the container saw them: owned by root, or by COPY ``--chown``'s ids.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kit import tarsafe
from kit.errors import KitError
from kit.image import kitfile
from kit.image import layer as layers
from kit.image import reference as references
from kit.image.container import find_in_layers, lookup_user
from kit.image.digest import chain_ids
from kit.image.documents import Descriptor
from kit.image.image import Image, new_config, resolve, write_image
from kit.image.store import Store
from kit.layers_view import human
from kit.removal import remove_tree
from kit.security import userns
from kit.security.userns import host_root
from kit.spec import Spec


@dataclass
class BuildState:
    """The image as it stands after the steps so far."""

    config: dict[str, Any]
    layers: list[Descriptor] = field(default_factory=list)
    key: str = ""

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def run(self) -> dict[str, Any]:
        return self.config.setdefault("config", {})


@dataclass
class BuildResult:
    image: Image
    steps: int
    cached: int


class Builder:
    """Runs one Kitfile in a context directory."""

    def __init__(
        self,
        store: Store,
        context: str,
        kitfile_path: str | None = None,
        *,
        log: TextIO | None = None,
        use_cache: bool = True,
        output_fd: int | None = None,
    ) -> None:
        self.store = store.init()
        self.context = Path(context).resolve()
        if not self.context.is_dir():
            raise KitError(
                f"build context {context} is not a directory",
                exit_code=2,
                fix="give the directory holding the Kitfile and the files it copies",
            )
        self.path = Path(kitfile_path) if kitfile_path else self.context / "Kitfile"
        self.log = log or sys.stderr
        self.use_cache = use_cache
        self.output_fd = output_fd
        self.cached = 0

    def say(self, text: str) -> None:
        self.log.write(text + "\n")
        self.log.flush()

    def build(self, tag: str | None = None) -> BuildResult:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise KitError(
                f"cannot read {self.path}",
                errno=exc.errno,
                exit_code=2,
                fix="create a Kitfile in the context, or pass -f FILE",
            ) from None
        instructions = kitfile.parse(text, str(self.path))
        state = self._from(instructions[0])
        for number, inst in enumerate(instructions, 1):
            self.say(f"STEP {number}/{len(instructions)}: {inst.source}")
            if inst.keyword == "FROM":
                continue
            previous = state.key
            state.key = _hash(previous, inst.source, self._inputs(inst))
            if inst.keyword in kitfile.LAYER_KEYWORDS:
                self._layer_step(state, inst)
            else:
                self._config_step(state, inst)
                self._history(state, inst, empty=True)
        name = references.parse(tag).name if tag else None
        state.config["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        image = write_image(self.store, state.config, state.layers, name)
        self.say(f"--> {image.short_id}" + (f" tagged {name}" if name else ""))
        return BuildResult(image, len(instructions), self.cached)

    def error(self, inst: kitfile.Instruction, problem: str, fix: str) -> kitfile.KitfileError:
        return kitfile.KitfileError(str(self.path), inst.line, problem, fix)

    # --- FROM ------------------------------------------------------------------------------

    def _from(self, inst: kitfile.Instruction) -> BuildState:
        base = inst.words()[0]
        if base == "scratch":
            return BuildState(new_config(), key=_hash("FROM scratch"))
        try:
            image = resolve(self.store, base)
        except KitError:
            raise self.error(
                inst,
                f"base image {base!r} is not in the store",
                f"get it first: `kit pull {base}` or `kit import FILE`",
            ) from None
        image.unpack()
        config = new_config(image.config.raw)
        config.setdefault("history", [])
        config.setdefault("config", {})
        return BuildState(config, list(image.manifest.layers), _hash("FROM", image.id))

    # --- config-only steps -----------------------------------------------------------------

    def _config_step(self, state: BuildState, inst: kitfile.Instruction) -> None:
        run = state.run
        if inst.keyword == "ENV":
            env = [e for e in run.get("Env") or [] if "=" in e]
            for key, value in kitfile.pairs(inst, str(self.path)):
                value = _expand(value, env)
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            run["Env"] = env
        elif inst.keyword == "LABEL":
            labels = run.get("Labels") or {}
            labels.update(dict(kitfile.pairs(inst, str(self.path))))
            run["Labels"] = labels
        elif inst.keyword == "WORKDIR":
            # Like Docker, WORKDIR, USER and COPY destinations expand earlier ENV variables.
            path = _expand(inst.words()[0], run.get("Env") or [])
            run["WorkingDir"] = os.path.normpath(os.path.join(run.get("WorkingDir") or "/", path))
        elif inst.keyword == "USER":
            run["User"] = _expand(inst.words()[0], run.get("Env") or [])
        elif inst.keyword in ("CMD", "ENTRYPOINT"):
            words = inst.exec_form if inst.exec_form is not None else ["/bin/sh", "-c", inst.text]
            run["Cmd" if inst.keyword == "CMD" else "Entrypoint"] = words

    def _history(self, state: BuildState, inst: kitfile.Instruction, *, empty: bool) -> None:
        entry: dict[str, Any] = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "created_by": inst.source,
            "comment": "kit build",
        }
        if empty:
            entry["empty_layer"] = True
        state.config.setdefault("history", []).append(entry)

    # --- layer steps -----------------------------------------------------------------------

    def _inputs(self, inst: kitfile.Instruction) -> str:
        """A hash of what a COPY/ADD reads from the context (names, modes, contents)."""
        if inst.keyword not in ("COPY", "ADD"):
            return ""
        digest = hashlib.sha256()
        for source in self._sources(inst):
            for path in [source, *sorted(source.rglob("*"))] if source.is_dir() else [source]:
                st = path.lstat()
                digest.update(f"{path.relative_to(self.context)}\0{st.st_mode}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    digest.update(os.readlink(path).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as handle:
                        while chunk := handle.read(1 << 20):
                            digest.update(chunk)
        return digest.hexdigest()

    def _sources(self, inst: kitfile.Instruction) -> list[Path]:
        out: list[Path] = []
        for pattern in inst.words()[:-1]:
            if "://" in pattern:
                raise self.error(
                    inst,
                    f"{inst.keyword} from a URL ({pattern}) is not supported",
                    "download the file into the context first",
                )
            matches = sorted(glob.glob(str(self.context / pattern.lstrip("/"))))
            if not matches:
                raise self.error(
                    inst,
                    f"{inst.keyword} source {pattern!r} not found in the "
                    f"build context {self.context}",
                    "check the name; sources are relative to the context directory",
                )
            for match in matches:
                path = Path(os.path.abspath(match))
                real = Path(os.path.realpath(match))
                if not path.is_relative_to(self.context) or not real.is_relative_to(self.context):
                    raise self.error(
                        inst,
                        f"{inst.keyword} source {pattern!r} is outside the build context",
                        "copy only files inside the context directory",
                    )
                out.append(path)
        return out

    def _layer_step(self, state: BuildState, inst: kitfile.Instruction) -> None:
        cache_file = self.store.cache / f"{state.key}.json"
        if self.use_cache and cache_file.is_file():
            try:
                entry = json.loads(cache_file.read_text())
                desc = Descriptor.from_dict(entry["layer"], where="build cache entry")
                if self.store.has_blob(desc.digest):
                    self._add_layer(state, desc, entry["diff_id"], inst)
                    self.cached += 1
                    self.say(f" --> using cache {desc.digest[7:19]}")
                    return
            except (KitError, ValueError, KeyError):
                pass  # a damaged cache entry is a miss
        scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=self.store.layers))
        spec: Spec | None = None
        try:
            tree = scratch / "tree"
            tree.mkdir(mode=0o755)
            if inst.keyword == "RUN":
                spec = self._run_spec(state, inst, scratch)
                tree = self._run(spec, inst, scratch)
                owners = userns.container_ids(spec)  # host -> container ids (rootless)
            else:
                owners = self._copy(state, inst, tree)
            packed = layers.pack_into_store(self.store, tree, owners=owners)
        finally:
            # Rootless: overlay's work/work (mode 000), files of subordinate ids.
            remove_tree(scratch, spec=spec)
        self._add_layer(state, packed.desc, packed.diff_id, inst)
        self.store.cache.mkdir(parents=True, exist_ok=True)
        temp = cache_file.with_suffix(".tmp")
        temp.write_text(json.dumps({"layer": packed.desc.to_dict(), "diff_id": packed.diff_id}))
        os.replace(temp, cache_file)
        self.say(f" --> layer {packed.desc.digest[7:19]} ({human(packed.desc.size)})")

    def _add_layer(
        self, state: BuildState, desc: Descriptor, diff_id: str, inst: kitfile.Instruction
    ) -> None:
        state.layers.append(desc)
        state.diff_ids.append(diff_id)
        self._history(state, inst, empty=False)
        chain = chain_ids(state.diff_ids)[-1]
        if not self.store.has_layer(chain):
            layers.unpack_into_store(
                self.store,
                desc,
                chain,
                diff_id=diff_id,
                userxattr=self.store.userxattr,
                what=f"layer of line {inst.line}",
            )

    def _lowers(self, state: BuildState) -> list[str]:
        chains = chain_ids(state.diff_ids)
        return [str(self.store.diff_path(c)) for c in reversed(chains)]

    def _dest(self, state: BuildState, inst: kitfile.Instruction) -> str:
        dest = _expand(inst.words()[-1], state.run.get("Env") or [])
        if not dest.startswith("/"):
            dest = os.path.join(state.run.get("WorkingDir") or "/", dest) + (
                "/" if dest.endswith("/") else ""
            )
        return dest

    def _copy(
        self, state: BuildState, inst: kitfile.Instruction, tree: Path
    ) -> layers.OwnerMap | None:
        """Put COPY/ADD's files in ``tree``; return how to record their owners (None: as on
        disk, where root gave them their owners; rootless: one owner for all)."""
        sources = self._sources(inst)
        dest = self._dest(state, inst)
        owner = None
        if "chown" in inst.flags:
            owner = lookup_user(self._lowers(state), inst.flags["chown"])
        into_dir = dest.endswith("/") or len(sources) > 1
        with tarsafe.SafeRoot(tree) as root:
            for source in sources:
                try:
                    self._copy_source(root, inst, source, dest, into_dir)
                except tarsafe.BlockedPath as exc:
                    raise self.error(
                        inst,
                        f"{inst.keyword} would write through /{exc.component}, {exc.kind} "
                        "an earlier source put in the layer (it could lead anywhere on the host)",
                        "give the sources different destinations, or drop that link",
                    ) from None
        if not host_root():
            # An ordinary user cannot give files away: every file here is theirs, and the
            # layer records them as root's (the user is root in their containers) or --chown's.
            forced = owner if owner is not None else (0, 0)
            return lambda _uid, _gid: forced
        if owner is not None:
            for path in tree.rglob("*"):  # rglob does not enter linked directories
                os.lchown(path, owner[0], owner[1])
        return None

    def _copy_source(
        self,
        root: tarsafe.SafeRoot,
        inst: kitfile.Instruction,
        source: Path,
        dest: str,
        into_dir: bool,
    ) -> None:
        """One COPY/ADD source into the layer's tree, never through a symlink already there."""
        if inst.keyword == "ADD" and source.is_file() and tarfile.is_tarfile(source):
            root.makedirs(dest)
            tarsafe.extract(source, root.path / dest.strip("/"), allow_devices=os.geteuid() == 0)
        elif source.is_dir():  # its contents, like `cp -a SOURCE/. DEST`
            root.makedirs(dest)
            _copy_tree(root, source, tarsafe.split(dest))
        elif source.is_symlink():
            root.symlink(os.readlink(source), _target(dest, source, into_dir))
        else:
            _copy_file(root, source, tarsafe.split(_target(dest, source, into_dir)))

    def _run_spec(self, state: BuildState, inst: kitfile.Instruction, scratch: Path) -> Spec:
        """The container of a RUN step: the layers so far under an empty upper directory."""
        from kit.runtime.defaults import default_spec
        from kit.spec import OverlaySpec

        upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
        for directory in (upper, work, merged):
            directory.mkdir(mode=0o755)
        lowers = [str(self.store.init_layer()), *self._lowers(state)]
        run = state.run
        cwd = run.get("WorkingDir") or "/"
        if cwd.strip("/") and find_in_layers(lowers, cwd) is None:
            (upper / cwd.strip("/")).mkdir(parents=True, mode=0o755)
        args = inst.exec_form if inst.exec_form is not None else ["/bin/sh", "-c", inst.text]
        spec = default_spec(
            args,
            str(merged),
            hostname="kit-build",
            env=[e for e in run.get("Env") or [] if "=" in e],
            cwd=cwd,
            namespaces=("pid", "ipc", "uts", "mount", "cgroup"),  # builds may use the network
        )
        if run.get("User"):
            uid, gid = lookup_user(lowers, str(run["User"]))
            spec.process.user.uid, spec.process.user.gid = uid, gid
        userxattr = self.store.userxattr
        if not host_root():
            userns.enable(spec)  # rootless: the only way to get the other namespaces
        spec.kit.overlay = OverlaySpec(
            lowers=lowers, upper=str(upper), work=str(work), userxattr=userxattr
        )
        return spec

    def _run(self, spec: Spec, inst: kitfile.Instruction, scratch: Path) -> Path:
        """Run a RUN step's container; return its upper directory (the new layer's files)."""
        capture = self.output_fd is None
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # a build step reads no input
        try:
            status = self._start(spec, devnull, capture)
        finally:
            os.close(devnull)
        if capture:
            output = (status.stdout + status.stderr).decode(errors="replace")
            if output:
                self.log.write(output if output.endswith("\n") else output + "\n")
        if status.error is not None:
            raise self.error(
                inst,
                f"RUN could not start: {status.error}",
                "check the command and the image it runs in",
            )
        if status.code != 0:
            raise self.error(
                inst,
                f"RUN {inst.text} exited with status {status.code}",
                "fix the command (its output is above)",
            )
        return scratch / "upper"

    def _start(self, spec: Any, stdin: int, capture: bool) -> Any:
        from kit.runtime.launcher import ContainerProcess

        with ContainerProcess(
            spec, stdin=stdin, stdout=self.output_fd, stderr=self.output_fd, capture=capture
        ) as container:
            return container.wait()


def _target(dest: str, source: Path, into_dir: bool) -> str:
    return os.path.join(dest, source.name) if into_dir else dest


# A later source may land where an earlier one left a symlink (`COPY a b /d/`, with a/x a link
# to /etc and b/x/passwd a file): shutil would write through the link, onto the host. So every
# path is opened with SafeRoot, which never follows a link and stops with BlockedPath instead.


def _copy_tree(root: tarsafe.SafeRoot, source: Path, parts: tarsafe.Parts) -> None:
    """Copy what is in the directory ``source`` into the directory ``parts`` of the tree."""
    with os.scandir(source) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        inside = (*parts, entry.name)
        if entry.is_symlink():
            root.symlink(os.readlink(entry.path), inside)
        elif entry.is_dir(follow_symlinks=False):
            root.makedirs(inside)
            _copy_tree(root, Path(entry.path), inside)
        else:
            _copy_file(root, Path(entry.path), inside)
    fd = root.open_dir(parts)
    try:
        # Mode, times and xattrs once the contents are in (adding them changed the mtime).
        shutil.copystat(source, f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _copy_file(root: tarsafe.SafeRoot, source: Path, parts: tarsafe.Parts) -> None:
    """Copy a file with its mode, times and xattrs (``cp -a``) to ``parts`` in the tree."""
    with root.parent(parts) as dir_fd:
        tarsafe.clear(dir_fd, parts[-1])  # a later source replaces an earlier one, even a link
        # The parent was reached without following a link and the name is now free, so
        # /proc/self/fd/N/NAME names a new file in exactly that directory.
        shutil.copy2(source, f"/proc/self/fd/{dir_fd}/{parts[-1]}", follow_symlinks=False)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _expand(value: str, env: list[str]) -> str:
    """``$VAR`` and ``${VAR}`` from earlier ENV lines, as Docker expands them in ENV."""
    known = dict(e.split("=", 1) for e in env)
    return re.sub(
        r"\$(?:\{(\w+)\}|(\w+))", lambda m: known.get(m.group(1) or m.group(2), ""), value
    )
