"""Resource limits per process (setrlimit(2)): ``--ulimit NAME=SOFT[:HARD]``, as Docker has it.

An rlimit belongs to one process and is inherited by its children: the number of open files
(``nofile``), the size of a core dump (``core``), of the stack (``stack``) ... Each has a
*soft* value, which the kernel enforces, and a *hard* ceiling. Any process may lower either,
and raise its soft value up to the hard one; raising a hard limit needs CAP_SYS_RESOURCE in the
initial user namespace. This machine's root runs without that capability (kit doctor shows
the capability sets), so here a hard limit can only stay or go down: kit says so instead of
silently running with a different limit.

Unlike cgroups, rlimits count per process, except ``nproc``, which counts every process of the
*real user id* on the whole host: ``--ulimit nproc=10`` for a container running as host root
counts all of root's processes. Use ``--pids-limit`` to limit a container's processes.
"""

from __future__ import annotations

import resource

from kit.errors import KitError
from kit.spec import Rlimit, Spec

#: Docker's names -> the kernel's (resource module constants share the names).
NAMES: dict[str, str] = {
    "as": "RLIMIT_AS",
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}

#: RLIM_INFINITY as the OCI spec writes it (an unsigned 64-bit -1).
INFINITY = 2**64 - 1


def _value(text: str, original: str) -> int:
    if text in ("unlimited", "-1"):
        return INFINITY
    if not text.isdigit():
        raise KitError(
            f"invalid --ulimit {original!r}",
            cause=f"{text!r} is not a whole number (or 'unlimited')",
            fix="write e.g. --ulimit nofile=1024:2048",
            exit_code=2,
        )
    return int(text)


def parse_ulimit(text: str) -> Rlimit:
    """``nofile=1024:2048`` -> Rlimit("RLIMIT_NOFILE", hard=2048, soft=1024)."""
    name, equals, values = text.partition("=")
    if not equals or not values:
        raise KitError(
            f"invalid --ulimit {text!r}",
            cause="the form is NAME=SOFT[:HARD]",
            fix="write e.g. --ulimit nofile=1024:2048 or --ulimit core=0",
            exit_code=2,
        )
    if name not in NAMES:
        raise KitError(
            f"unknown --ulimit name {name!r}",
            fix=f"use one of: {', '.join(NAMES)}",
            exit_code=2,
        )
    soft_text, colon, hard_text = values.partition(":")
    soft = _value(soft_text, text)
    hard = _value(hard_text, text) if colon else soft
    if soft > hard:
        raise KitError(
            f"invalid --ulimit {text!r}: the soft limit is above the hard limit",
            cause="the hard limit is the ceiling of the soft one",
            fix="make SOFT at most HARD",
            exit_code=2,
        )
    return Rlimit(type=NAMES[name], hard=hard, soft=soft)


def add_ulimits(spec: Spec, texts: list[str]) -> None:
    """Record ``--ulimit`` values in ``process.rlimits`` (a later one for a name wins)."""
    for text in texts:
        limit = parse_ulimit(text)
        spec.process.rlimits = [r for r in spec.process.rlimits if r.type != limit.type]
        spec.process.rlimits.append(limit)


def kernel_value(value: int) -> int:
    """OCI's RLIM_INFINITY (2**64-1) -> the resource module's (-1)."""
    return resource.RLIM_INFINITY if value >= INFINITY else value


def shown(value: int) -> str:
    return "RLIM_INFINITY" if value >= INFINITY or value == resource.RLIM_INFINITY else str(value)


def resource_number(name: str) -> int:
    number = getattr(resource, name, None)
    if not isinstance(number, int):
        raise KitError(
            f"unknown rlimit {name}",
            fix=f"use one of: {', '.join(NAMES.values())}",
        )
    return number
