"""Who the container's program runs as: ``-u UID[:GID]`` or ``-u NAME[:GROUP]``.

The kernel knows only numbers. Names are a userland convention kept in /etc/passwd and
/etc/group, and the files that count are the *container's*: user ``www`` may be uid 33 in one
image and 82 in another. So kit looks names up inside the container, in the identity stage,
after pivot_root: by then ``/`` is the container's root, and no path (not even a symlink in a
hostile image) can lead to the host's files. The files are opened without blocking and read
only if they are regular files of sane size (a FIFO planted as /etc/passwd must not hang the
start).

As Docker does: ``-u NAME`` takes the user's primary group from /etc/passwd and adds every
group in /etc/group that lists the user; ``-u UID`` without a group does the same when the uid
has an entry, and uses gid 0 when it has none; HOME comes from the entry (``/`` without one)
unless the environment already sets it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

from kit.errors import KitError
from kit.spec import Spec

#: ids are 32-bit; 4294967295 ((uid_t) -1) means "no change" to the kernel, so it is refused.
MAX_ID = 4294967294

#: What a user or group *name* may look like (the shadow-utils rule, plus upper case).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")

#: Larger account files are not plausible; refuse rather than read them into memory.
MAX_FILE_SIZE = 4 << 20


@dataclass(frozen=True)
class Account:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class Group:
    """One line of /etc/group."""

    name: str
    gid: int
    members: tuple[str, ...]


def _id_or_name(text: str, what: str, original: str) -> int | str:
    if text.isdigit():
        value = int(text)
        if value > MAX_ID:
            raise _bad(original, f"{what} {text} is out of range (0 to {MAX_ID})")
        return value
    if not _NAME.match(text):
        raise _bad(original, f"{text!r} is neither a number nor a valid {what} name")
    return text


def _bad(text: str, cause: str) -> KitError:
    return KitError(
        f"invalid --user {text!r}",
        cause=cause,
        fix="use --user UID[:GID] or --user NAME[:GROUP], e.g. --user 1000:1000 or --user learner",
        exit_code=2,
    )


def parse_user(text: str) -> tuple[int | str, int | str | None]:
    """``"1000:100"`` -> (1000, 100); ``"www"`` -> ("www", None). Checks syntax only."""
    user_text, colon, group_text = text.partition(":")
    if not user_text or (colon and not group_text):
        raise _bad(text, "the user (and the group after a colon) must not be empty")
    user = _id_or_name(user_text, "user", text)
    group = _id_or_name(group_text, "group", text) if colon else None
    return user, group


def apply_user(spec: Spec, text: str, *, home_given: bool) -> None:
    """Record ``-u TEXT`` in the spec.

    Numbers go straight into ``process.user``; the text is also kept in ``spec.kit.user`` for
    the identity stage to complete from the container's files (names, the primary group of a
    bare uid, supplementary groups, HOME). Unless the caller set HOME, the
    default ``HOME=/root`` is dropped so the stage can use the user's own.
    """
    user, group = parse_user(text)
    if isinstance(user, int):
        spec.process.user.uid = user
    if isinstance(group, int):
        spec.process.user.gid = group
    elif group is None:
        spec.process.user.gid = 0
    spec.kit.user = text
    if not home_given:
        spec.process.env = [e for e in spec.process.env if not e.startswith("HOME=")]


def read_account_file(path: str) -> str:
    """The text of /etc/passwd or /etc/group in the current root ("" if missing).

    O_NONBLOCK so that a FIFO cannot block the open, and only a regular file is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise KitError(
            f"cannot open {path} in the container",
            errno=exc.errno,
            cause="user and group names are looked up in it",
            fix="use numeric ids (--user UID:GID), or fix the file in the image",
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KitError(
                f"{path} in the container is not a regular file",
                cause="user names are looked up in it; kit refuses to read anything else",
                fix="use numeric ids (--user UID:GID), or fix the image",
            )
        if info.st_size > MAX_FILE_SIZE:
            raise KitError(
                f"{path} in the container is implausibly large ({info.st_size} bytes)",
                fix="use numeric ids (--user UID:GID), or fix the image",
            )
        return os.read(fd, MAX_FILE_SIZE + 1).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def parse_passwd(text: str) -> list[Account]:
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit() or not fields[3].isdigit():
            continue  # comments, NIS "+" lines, broken entries: skipped as libc does
        out.append(Account(fields[0], int(fields[2]), int(fields[3]), fields[5]))
    return out


def parse_group(text: str) -> list[Group]:
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        out.append(Group(fields[0], int(fields[2]), members))
    return out


@dataclass(frozen=True)
class Resolved:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def resolve(text: str, passwd: str, group: str) -> Resolved:
    """Resolve ``-u TEXT`` against the texts of /etc/passwd and /etc/group (pure)."""
    user, group_part = parse_user(text)
    accounts = parse_passwd(passwd)
    groups = parse_group(group)
    if isinstance(user, int):
        account = next((a for a in accounts if a.uid == user), None)
    else:
        account = next((a for a in accounts if a.name == user), None)
        if account is None:
            raise KitError(
                f"no user named {user!r} in the container's /etc/passwd",
                cause="names are looked up in the container's own files, not the host's",
                fix="use a numeric uid (--user 1000), or add the user to the image",
            )
    uid = account.uid if account else int(user)
    if group_part is None:
        gid = account.gid if account else 0
    elif isinstance(group_part, int):
        gid = group_part
    else:
        match = next((g for g in groups if g.name == group_part), None)
        if match is None:
            raise KitError(
                f"no group named {group_part!r} in the container's /etc/group",
                fix="use a numeric gid (--user UID:GID), or add the group to the image",
            )
        gid = match.gid
    extra: list[int] = []
    if account is not None:
        extra = [g.gid for g in groups if account.name in g.members and g.gid != gid]
    home = account.home if account and account.home else "/"
    return Resolved(uid, gid, tuple(dict.fromkeys(extra)), home)


def resolve_in_container(spec: Spec) -> None:
    """Complete ``spec.process.user`` (and HOME) from the container's files. Called after
    pivot_root, so ``/etc/passwd`` is the container's."""
    text = spec.kit.user
    if not text:
        return
    found = resolve(text, read_account_file("/etc/passwd"), read_account_file("/etc/group"))
    user = spec.process.user
    user.uid, user.gid = found.uid, found.gid
    user.additional_gids = list(dict.fromkeys([*user.additional_gids, *found.additional_gids]))
    if not any(e.startswith("HOME=") for e in spec.process.env):
        spec.process.env.append(f"HOME={found.home}")
