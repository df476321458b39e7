"""User namespaces: root inside the container, an ordinary user outside.

A user namespace gives its processes their own user and group ids. The *id maps*
(``/proc/PID/uid_map`` and ``gid_map``) say which outside id each inside id stands for: with
``0 1000 1``, uid 0 inside is uid 1000 outside. The kernel checks every permission against
the outside id, so the container's root can own the container (mount its /proc, set its
hostname, create files in its root filesystem) and still cannot touch a host file that user
1000 could not touch. Capabilities held inside only count for objects the namespace owns.

Who may write the maps (user_namespaces(7)):

* a process in the *parent* namespace, once, in a single write, for a child that exists;
* root (CAP_SETUID/CAP_SETGID outside) may map any ids;
* an ordinary user may map only their own uid and gid, and the gid map only after writing
  ``deny`` to ``/proc/PID/setgroups`` (otherwise a process could drop a group that was
  denying it access);
* for more ids, the setuid helpers ``newuidmap``/``newgidmap`` (package uidmap) map the ranges
  that /etc/subuid and /etc/subgid grant the user.

kit's default mapping (``kit run --userns``, and always when kit runs as an ordinary user):
container root is the invoking user, and the user's subordinate ranges (if any, and if the
helpers are installed) follow as uids 1, 2, ... When root asks for a user namespace, the
container's ids come from root's subordinate ranges when /etc/subuid has some; otherwise
container root is mapped to ``nobody`` (65534), one id: mapping root to root would let the
container's root write every root-owned host file it can reach, which is what the namespace
is meant to prevent.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import pwd
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.errors import KitError
from kit.linux.kernfs import read_text, write_text
from kit.spec import IdMapping, Mount, Namespace, Spec
from kit.trace import tracer

if TYPE_CHECKING:
    from kit.runtime.context import InitContext

#: The overflow id: what unmapped ids look like, owner of nothing. kit maps root's containers
#: to it when root has no subordinate ranges.
NOBODY = 65534

#: Options of a ``/sys`` bind mount used when the container cannot mount its own sysfs.
SYSFS_BIND_OPTIONS = ["rbind", "nosuid", "noexec", "nodev", "ro"]


@dataclass(frozen=True)
class Invoker:
    """Who is starting the container: the ids kit runs with, and the user's name."""

    uid: int
    gid: int
    name: str

    @classmethod
    def current(cls) -> Invoker:
        uid, gid = os.geteuid(), os.getegid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(uid, gid, name)


def parse_subids(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """``(start, count)`` ranges granted to ``user`` (by name or uid) in /etc/subuid text."""
    ranges: list[tuple[int, int]] = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count > 0 and start >= 0:
            ranges.append((start, count))
    return ranges


def _read_or_empty(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def is_privileged(path: str) -> bool:
    """Whether a program runs with more privilege than its caller: setuid, or file capabilities.

    newuidmap/newgidmap need one of them to write maps for ranges the caller does not own.
    """
    try:
        if os.stat(path).st_mode & stat.S_ISUID:
            return True
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def helper(name: str) -> str | None:
    """Path of newuidmap/newgidmap if installed with the privilege it needs (setuid or caps)."""
    path = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    return path if path is not None and is_privileged(path) else None


def _chain(first_container_id: int, ranges: list[tuple[int, int]]) -> list[IdMapping]:
    out: list[IdMapping] = []
    next_id = first_container_id
    for start, count in ranges:
        out.append(IdMapping(container_id=next_id, host_id=start, size=count))
        next_id += count
    return out


def default_mappings(
    invoker: Invoker | None = None,
    *,
    subuid_text: str | None = None,
    subgid_text: str | None = None,
    helpers: bool | None = None,
) -> tuple[list[IdMapping], list[IdMapping]]:
    """The uid and gid maps kit uses when none are given (see the module docstring).

    Pure when every argument is given (tests pass the texts); otherwise it reads
    /etc/subuid, /etc/subgid and looks for the helpers.
    """
    who = invoker or Invoker.current()
    uid_text = _read_or_empty("/etc/subuid") if subuid_text is None else subuid_text
    gid_text = _read_or_empty("/etc/subgid") if subgid_text is None else subgid_text
    sub_uids = parse_subids(uid_text, who.name, who.uid)
    sub_gids = parse_subids(gid_text, who.name, who.uid)
    if who.uid == 0:
        # Root writes any map itself; it needs ranges only to know which ids are its to give.
        if sub_uids and sub_gids:
            return _chain(0, sub_uids), _chain(0, sub_gids)
        return [IdMapping(0, NOBODY, 1)], [IdMapping(0, NOBODY, 1)]
    uids = [IdMapping(0, who.uid, 1)]
    gids = [IdMapping(0, who.gid, 1)]
    usable = (helper("newuidmap") and helper("newgidmap")) if helpers is None else helpers
    if sub_uids and sub_gids and usable:
        uids += _chain(1, sub_uids)
        gids += _chain(1, sub_gids)
    return uids, gids


def creates_user_namespace(spec: Spec) -> bool:
    """Whether the container gets a *new* user namespace (not one joined by path)."""
    ns = spec.linux.namespace("user")
    return ns is not None and not ns.path


def is_mapped(mappings: list[IdMapping], container_id: int) -> bool:
    return any(m.container_id <= container_id < m.container_id + m.size for m in mappings)


def enable(spec: Spec, invoker: Invoker | None = None) -> None:
    """Give the container a new user namespace with kit's default maps, and adapt the mounts
    that cannot work unchanged inside one. Idempotent."""
    if spec.linux.namespace("user") is None:
        spec.linux.namespaces.insert(0, Namespace("user"))
    complete(spec, invoker)


def complete(spec: Spec, invoker: Invoker | None = None) -> None:
    """Fill in default id maps and adapt mounts for a spec that asks for a new user namespace.

    * ``/dev/pts`` is mounted with ``gid=5`` (the tty group) by default; the kernel refuses a
      gid that has no mapping, so the option goes when 5 is not mapped (as ``runc spec
      --rootless`` does).
    * sysfs may only be mounted by the owner of the network namespace; with the host's network
      (``--net host``) the container bind-mounts the host's ``/sys`` read-only instead.
    """
    if not creates_user_namespace(spec):
        return
    if not spec.linux.uid_mappings or not spec.linux.gid_mappings:
        uids, gids = default_mappings(invoker)
        spec.linux.uid_mappings = spec.linux.uid_mappings or uids
        spec.linux.gid_mappings = spec.linux.gid_mappings or gids
    for i, entry in enumerate(spec.mounts):
        if entry.type == "devpts" and not is_mapped(spec.linux.gid_mappings, 5):
            entry.options = [o for o in entry.options if not o.startswith("gid=")]
        if entry.type == "sysfs" and not spec.has_namespace("network"):
            spec.mounts[i] = Mount(entry.destination, "bind", "/sys", list(SYSFS_BIND_OPTIONS))


def check_mappings(spec: Spec) -> None:
    """Refuse maps the kernel would reject, with the reason (before anything starts)."""
    for kind, mappings in (("uid", spec.linux.uid_mappings), ("gid", spec.linux.gid_mappings)):
        if not mappings:
            raise KitError(
                f"the user namespace has no {kind} map",
                fix=f"add linux.{kind}Mappings to the spec, or use `kit run --userns`",
            )
        if len(mappings) > 340:
            raise KitError(
                f"{len(mappings)} {kind} map lines; the kernel accepts at most 340",
                fix="merge adjacent ranges",
            )
        spans = sorted((m.container_id, m.container_id + m.size) for m in mappings)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise KitError(
                    f"overlapping {kind} map ranges in the spec",
                    cause="the kernel refuses a map in which an inside id appears twice",
                    fix=f"correct linux.{kind}Mappings",
                )


def _map_text(mappings: list[IdMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def _only_own_ids(spec: Spec) -> bool:
    """Whether the maps name nothing but the caller's own uid and gid (no helper needed)."""
    uids, gids = spec.linux.uid_mappings, spec.linux.gid_mappings
    return (
        len(uids) == 1
        and len(gids) == 1
        and uids[0].size == 1
        and gids[0].size == 1
        and uids[0].host_id == os.geteuid()
        and gids[0].host_id == os.getegid()
    )


def write_maps(pid: int, spec: Spec) -> None:
    """Write the container's id maps, from the parent namespace (the init parent).

    The container process waits until this is done: before it, every id inside is unmapped
    (shown as 65534), and the kernel refuses to create files owned by unmapped ids.
    """
    check_mappings(spec)
    uid_text = _map_text(spec.linux.uid_mappings)
    gid_text = _map_text(spec.linux.gid_mappings)
    if os.geteuid() == 0:
        write_text(f"/proc/{pid}/uid_map", uid_text, note="root may map any ids")
        write_text(f"/proc/{pid}/gid_map", gid_text)
        return
    if _only_own_ids(spec):
        # An ordinary user's own ids: allowed, but the gid map only once setgroups(2) is
        # disabled in the namespace.
        write_text(f"/proc/{pid}/setgroups", "deny", note="required before an unprivileged gid map")
        write_text(f"/proc/{pid}/uid_map", uid_text, note="map your own uid: no privilege needed")
        write_text(f"/proc/{pid}/gid_map", gid_text)
        return
    for tool, mappings in (
        ("newuidmap", spec.linux.uid_mappings),
        ("newgidmap", spec.linux.gid_mappings),
    ):
        run_helper(tool, pid, mappings)


def run_helper(tool: str, pid: int, mappings: list[IdMapping]) -> None:
    """Let the setuid helper write a map of subordinate ranges (it checks /etc/sub[ug]id)."""
    path = helper(tool)
    if path is None:
        raise KitError(
            f"mapping more than your own id needs {tool}, which is missing or not setuid",
            fix="install the uidmap package (sudo apt-get install uidmap), or map only your "
            "own id (drop the --uidmap/--gidmap ranges); `kit doctor` checks this",
        )
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    tracer().info(" ".join(argv), tool=tool)
    # Imported here: only subordinate-id maps need a helper program, and every container
    # start imports this module (subprocess alone costs about 2 ms).
    import subprocess

    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise KitError(
            f"{tool} refused the map {' '.join(argv[2:])}",
            cause=done.stderr.strip() or f"{tool} exited with {done.returncode}",
            fix="the ranges must be granted to you in /etc/subuid and /etc/subgid "
            "(`kit doctor` shows yours); an administrator adds them with "
            "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER",
        )


def setgroups_allowed() -> bool:
    """Whether setgroups(2) may be called in this process's user namespace."""
    try:
        return read_text("/proc/self/setgroups").strip() != "deny"
    except OSError:
        return True


def become_root(spec: Spec) -> None:
    """In the container process, right after the maps exist: become uid and gid 0 inside.

    Until now the process kept the ids it had outside (unmapped, unless they are mapped to 0);
    files it creates must belong to mapped ids, and root of the namespace is who owns it.
    """
    from kit.linux.process import setgroups, setresgid, setresuid

    if is_mapped(spec.linux.gid_mappings, 0):
        if setgroups_allowed():
            setgroups([])  # the outside groups are unmapped here: drop them
        setresgid(0)
    if is_mapped(spec.linux.uid_mappings, 0):
        setresuid(0)


def check_reachable(spec: Spec) -> None:
    """In the container process, as root of the new user namespace: can it reach its root
    filesystem? Its root is an ordinary user outside, so every directory on the way must be
    searchable by that user (a 0700 home or /tmp/pytest-of-root is not)."""
    if _ROOTFS:
        return  # opened from outside: no path to walk
    path = os.path.abspath(spec.root.path)
    try:
        os.stat(path)
    except PermissionError:
        outside = next((m.host_id for m in spec.linux.uid_mappings if m.container_id == 0), None)
        raise KitError(
            f"the container's root cannot reach its root filesystem {path}",
            errno=errno.EACCES,
            cause=f"in the user namespace, root is uid {outside} on the host, and a directory "
            "on the way is not searchable by that user",
            fix="make every directory on the way searchable (chmod o+x DIR, or 0711), or keep "
            "the root filesystem somewhere that user can reach",
        ) from None
    except OSError:
        pass  # missing and other problems: the rootfs stage reports them


# --- bind-mount sources, opened from outside -------------------------------------------------

#: Bind-mount sources the init parent opened before creating the user namespace:
#: (destination, source) -> a detached copy of the source mount (open_tree(OPEN_TREE_CLONE)).
#: The container process inherits the descriptors with the rest of its parent's memory.
_PINNED: dict[tuple[str, str], int] = {}


def _is_bind(entry: Mount) -> bool:
    return entry.type == "bind" or "bind" in entry.options or "rbind" in entry.options


def pin_bind_sources(spec: Spec) -> None:
    """In the init parent, before the user namespace exists: open every bind-mount source.

    Inside the namespace, root is an ordinary user on the host, and the path to a source may
    pass through directories only host root can search (kit's own 0700 state directories,
    where /etc/hostname and friends are kept). A detached copy of the source mount, made here
    with host privileges, can be attached inside without walking that path again (runc does
    the same). Sources that cannot be opened are left for the volumes stage to report.
    """
    from kit.linux import newmount

    for entry in spec.mounts:
        if not _is_bind(entry) or not entry.source or not entry.source.startswith("/"):
            continue
        flags = newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC
        if "rbind" in entry.options:
            flags |= newmount.AT_RECURSIVE
        try:
            fd = newmount.open_tree(newmount.AT_FDCWD, entry.source, flags)
        except KitError:
            continue
        _PINNED[(entry.destination, entry.source)] = fd


def pinned_source(entry: Mount) -> int | None:
    """The detached copy of this entry's source, if the init parent made one."""
    if entry.source is None:
        return None
    return _PINNED.get((entry.destination, entry.source))


#: The root filesystem, opened the same way (a plain directory rootfs, not an overlay).
_ROOTFS: list[int] = []

#: Where the container process attaches its pinned root filesystem: a directory every host has
#: and any user can reach. The mount exists only in the container's mount namespace (the
#: host's /tmp is untouched) and only until pivot_root makes it ``/``.
ROOTFS_STAGING = "/tmp"


def pin_rootfs(spec: Spec) -> None:
    """In the init parent: open the root filesystem directory (see :func:`pin_bind_sources`:
    a 0700 directory on the way, like kit's own data directory, is no obstacle then), or
    build an image's overlay (see :func:`pin_overlay`)."""
    from kit.linux import newmount

    if spec.kit.overlay is not None:
        pin_overlay(spec)
        return
    flags = newmount.OPEN_TREE_CLONE | newmount.OPEN_TREE_CLOEXEC | newmount.AT_RECURSIVE
    root = os.path.abspath(spec.root.path)
    # Missing or not a directory: the rootfs stage says so.
    with contextlib.suppress(KitError):
        _ROOTFS.append(newmount.open_tree(newmount.AT_FDCWD, root, flags))


def host_root() -> bool:
    """Whether this process is root of the *initial* user namespace (real root on the host).

    Only then can it mount overlayfs with ``trusted.*`` marks and make idmapped mounts of an
    ordinary disk. uid 0 in some user namespace (``unshare --map-root-user``) is not.
    """
    if os.geteuid() != 0:
        return False
    try:
        first = read_text("/proc/self/uid_map").split()
    except OSError:
        return True  # no /proc: assume the plain case
    return first[:3] == ["0", "0", "4294967295"]


def pin_overlay(spec: Spec) -> None:
    """In the init parent, as host root: build the image's overlay before the container's user
    namespace exists, detached, for the container process to attach (:func:`attach_rootfs`).

    Why here and not in the rootfs stage: inside the namespace, the container's root is an
    ordinary user on the host (nobody, or a subordinate uid) who can reach neither kit's
    private data directory, where the layers are, nor the trusted.* marks of root's layers
    (whiteouts work for anyone; opaque directories are ``trusted.overlay.opaque``). Mounted
    here, the overlay runs every lookup and copy-up with the mounter's credentials: host
    root's. Permission checks for the container's own accesses still use its ids.

    With ``overlay.idmap`` (the default) the lower layers are idmapped through a namespace
    with the container's maps, so the image's root-owned files belong to the container's
    root (see :func:`kit.overlay.detached_overlay`); without it they would belong to an
    unmapped id inside (shown as nobody) and root in the container could change none of
    them. Rootless kit never gets here: an ordinary user can neither idmap an ext4 mount
    nor mount overlayfs outside a user namespace, so the rootfs stage mounts the overlay
    inside, with ``userxattr``, on layers the user owns.
    """
    from kit import overlay

    layers = spec.kit.overlay
    if layers is None or not host_root():
        return
    userns_fd = namespace_with_maps(spec) if layers.idmap else None
    try:
        try:
            fd = overlay.detached_overlay(
                layers.lowers,
                layers.upper,
                layers.work,
                userxattr=layers.userxattr,
                idmap_userns=userns_fd,
            )
        except KitError as error:
            # A filesystem that refuses idmapped mounts (ext4, xfs, btrfs and tmpfs since 6.3
            # take them; some network filesystems do not): say so and go on without.
            if userns_fd is None or not error.what.startswith("mount_setattr("):
                raise
            tracer().info(
                f"the image's layers cannot be idmapped here ({error}); the container's root "
                "will see them owned by an unmapped id (nobody) and can change none of them",
                errno=error.errno,
            )
            fd = overlay.detached_overlay(
                layers.lowers, layers.upper, layers.work, userxattr=layers.userxattr
            )
    finally:
        if userns_fd is not None:
            os.close(userns_fd)
    _ROOTFS.append(fd)


def namespace_with_maps(spec: Spec) -> int:
    """A new user namespace with the container's id maps; returns an fd that keeps it alive.

    An idmapped mount takes its map from a user namespace, and the container's own does not
    exist yet (the init parent creates it with clone(2) later). A short-lived helper child
    unshares one, the parent writes the same maps into it, opens ``/proc/CHILD/ns/user`` and
    lets the child go: the namespace lives on as long as the fd is open.
    """
    tracer().info("a helper process makes a user namespace with the container's id maps")
    with _mapped_child(spec) as pid:
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)


def maps_other_ids(spec: Spec) -> bool:
    """Whether the container's maps give it more host ids than the caller's own (subordinate
    ranges, through newuidmap): files it made may then belong to ids the caller cannot touch."""
    return creates_user_namespace(spec) and not _only_own_ids(spec)


def in_mapped_namespace(spec: Spec, work: Callable[[], None]) -> None:
    """Run ``work`` in a child process inside a new user namespace with the container's maps.

    There the caller is root, with capabilities over every file whose owner the maps name:
    an ordinary user can so remove the files a rootless container made as uid 1000 (uid
    100999 on the host, say), which the user may not touch from outside.
    """
    with _mapped_child(spec, work):
        pass


@contextlib.contextmanager
def _mapped_child(spec: Spec, work: Callable[[], None] | None = None) -> Iterator[int]:
    """Fork a child that unshares a new user namespace; write the spec's maps into it and
    yield its PID while it waits; then let it run ``work`` (if any) and reap it.

    The child must be the one to unshare (the caller stays where it is) and only a process
    outside may write the maps: the same dance as the init parent's, in miniature.
    """
    from kit.linux.flags import CLONE_NEWUSER
    from kit.linux.namespaces import unshare

    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare(CLONE_NEWUSER)
            os.write(ready_w, b"u")
            # "m": the maps are written and the parent is done; end-of-file: it gave up.
            if os.read(go_r, 1) == b"m":
                if work is not None:
                    work()
                code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise KitError(
                "could not create a user namespace for a helper process",
                cause="its unshare(CLONE_NEWUSER) failed (see the trace)",
                fix="`kit doctor` checks user namespaces on this host",
            )
        write_maps(pid, spec)
        yield pid
        os.write(go_w, b"m")
    finally:
        os.close(ready_r)
        os.close(go_w)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise KitError(
            "a helper process in a user namespace with the container's maps failed",
            fix="run with --trace to see its calls; `kit doctor` checks user namespaces",
        )


def root_on_host(spec: Spec) -> tuple[int, int] | None:
    """The host uid and gid of the container's root, or None without a new user namespace.

    Files the container creates in its writable layer belong to these ids on the host, so
    the writable layer's own top directory must too, or the container's root could not
    create anything in ``/`` (its top directory is the upper directory's).
    """
    if not creates_user_namespace(spec):
        return None

    def host(mappings: list[IdMapping]) -> int:
        for m in mappings:
            if m.container_id <= 0 < m.container_id + m.size:
                return m.host_id - m.container_id
        return NOBODY

    return host(spec.linux.uid_mappings), host(spec.linux.gid_mappings)


def container_ids(spec: Spec) -> IdTranslation | None:
    """host -> container id translation for files written through the container's user
    namespace (its writable layer), or None when there is none (ids are the same)."""
    if not creates_user_namespace(spec):
        return None
    return IdTranslation(spec.linux.uid_mappings, spec.linux.gid_mappings)


@dataclass(frozen=True)
class IdTranslation:
    """Turn host ids back into container ids through a container's maps.

    A file that the container's root created is owned by its host uid (the invoking user in
    rootless mode, nobody or a subordinate uid for root's containers); an image layer must
    record it as uid 0, as the container saw it. Host ids outside the map (they cannot come
    from inside) stay as they are.
    """

    uids: list[IdMapping]
    gids: list[IdMapping]

    @staticmethod
    def _back(mappings: list[IdMapping], host_id: int) -> int:
        for m in mappings:
            if m.host_id <= host_id < m.host_id + m.size:
                return m.container_id + host_id - m.host_id
        return host_id

    def __call__(self, uid: int, gid: int) -> tuple[int, int]:
        return self._back(self.uids, uid), self._back(self.gids, gid)


def attach_rootfs(ctx: InitContext) -> bool:
    """In the container process (rootfs stage): attach the pinned root filesystem at
    :data:`ROOTFS_STAGING` and build the container there. False when nothing is pinned."""
    from kit.linux import newmount

    if not _ROOTFS:
        return False
    fd = _ROOTFS.pop()
    what = (
        "the image's overlay, built by the init parent,"
        if ctx.spec.kit.overlay is not None
        else f"the root filesystem {ctx.rootfs}, opened by the init parent,"
    )
    where = f"attached over {ROOTFS_STAGING} in this mount namespace only"
    newmount.attach(fd, ROOTFS_STAGING, note=f"{what} {where}")
    os.close(fd)
    ctx.rootfs = ROOTFS_STAGING
    return True


def release_pinned() -> None:
    """Close the init parent's copies (the container process has its own)."""
    for fd in [*_PINNED.values(), *_ROOTFS]:
        os.close(fd)
    _PINNED.clear()
    _ROOTFS.clear()
