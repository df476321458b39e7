"""Landlock rules for a container: the program may reach only the paths you list.

``kit run --landlock /bin:rx --landlock /lib:rx --landlock /tmp:rw ...`` turns Landlock on
for the container's program: every file-system access Landlock knows (reading, writing,
executing, creating, removing, renaming ...) is denied, except beneath the listed paths, each
with its own rights:

=========  ==============================================================================
``ro``     read files, list directories
``rw``     ``ro`` plus write, create, remove, rename, truncate, and ioctl on devices
``rx``     ``ro`` plus execute
``rwx``    everything
=========  ==============================================================================

Paths are the container's (the rules are made after pivot_root). Landlock sits on top of
the other controls: it can only take access away, never grant what file permissions, mount
flags or capabilities deny. Files opened *before* the restriction (the program's stdin,
stdout and stderr) stay usable.

In the spec: ``kit.landlock`` is a list of ``{"path": ..., "access": ["read", "write",
"execute"]}``; ``null`` means no Landlock, an empty list denies every path.
"""

from __future__ import annotations

import os
import stat

from kit.errors import KitError
from kit.linux import landlock as ll
from kit.spec import LandlockRule

#: The words of ``LandlockRule.access`` and the rights each allows.
ACCESS_WORDS: dict[str, int] = {
    "read": ll.READ_FILE | ll.READ_DIR,
    "write": ll.WRITE_FILE
    | ll.REMOVE_DIR
    | ll.REMOVE_FILE
    | ll.MAKE_CHAR
    | ll.MAKE_DIR
    | ll.MAKE_REG
    | ll.MAKE_SOCK
    | ll.MAKE_FIFO
    | ll.MAKE_BLOCK
    | ll.MAKE_SYM
    | ll.REFER
    | ll.TRUNCATE
    | ll.IOCTL_DEV,
    "execute": ll.EXECUTE,
}

#: ``--landlock PATH:MODE`` modes -> access words.
MODES: dict[str, list[str]] = {
    "ro": ["read"],
    "rw": ["read", "write"],
    "rx": ["read", "execute"],
    "rwx": ["read", "write", "execute"],
}


def parse_rule(text: str) -> LandlockRule:
    """``/tmp:rw`` -> LandlockRule("/tmp", ["read", "write"]); the mode defaults to ``ro``."""
    path, colon, mode = text.rpartition(":")
    if not colon:
        path, mode = text, "ro"
    if not path.startswith("/") or mode not in MODES:
        raise KitError(
            f"invalid --landlock {text!r}",
            cause="a rule is an absolute path inside the container, optionally followed by "
            f":{'|:'.join(MODES)} (default ro)",
            fix="write e.g. --landlock /bin:rx --landlock /tmp:rw",
            exit_code=2,
        )
    return LandlockRule(os.path.normpath(path), list(MODES[mode]))


def rights_of(rule: LandlockRule) -> int:
    rights = 0
    for word in rule.access:
        if word not in ACCESS_WORDS:
            raise KitError(
                f"unknown Landlock access {word!r} for {rule.path}",
                fix=f"use {', '.join(ACCESS_WORDS)}",
            )
        rights |= ACCESS_WORDS[word]
    return rights


def unavailable(abi: int) -> KitError:
    return KitError(
        "Landlock rules were given, but this kernel has no Landlock"
        if abi == 0
        else f"Landlock ABI {abi} is too old",
        cause="Landlock needs Linux 5.13 or newer, built with CONFIG_SECURITY_LANDLOCK and "
        "enabled at boot (lsm=...landlock...); without it the rules could not be enforced",
        fix="drop --landlock, or see `kit doctor` for how to enable Landlock here",
    )


def enforce(rules: list[LandlockRule]) -> int:
    """Create the ruleset, add a rule per path, and restrict this process. Returns the ABI.

    Rights the kernel's ABI does not know are left out of both the handled set and the
    rules (best effort, as the Landlock documentation recommends): an older kernel enforces
    fewer distinctions, never none.
    """
    abi = ll.abi_version()
    if abi < 1:
        raise unavailable(abi)
    handled = ll.fs_rights(abi)
    ruleset = ll.create_ruleset(handled)
    try:
        for rule in rules:
            _add(ruleset, rule, handled)
        ll.restrict_self(ruleset)
    finally:
        os.close(ruleset)
    return abi


def _add(ruleset: int, rule: LandlockRule, handled: int) -> None:
    try:
        fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise KitError(
            f"Landlock rule path {rule.path} cannot be opened in the container",
            errno=exc.errno,
            cause="a rule names an existing file or directory of the container",
            fix="correct the path, or create it in the image",
        ) from None
    try:
        allowed = rights_of(rule) & handled
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            allowed &= ll.FILE_RIGHTS  # creating or removing "beneath" a file means nothing
        ll.add_path_rule(ruleset, allowed, fd, rule.path)
    finally:
        os.close(fd)
