"""Resource limits as people write them (``--memory 64m``, ``--cpus 1.5``) and as the spec
holds them (OCI ``linux.resources``: bytes, a CFS quota and period, a pids maximum).

Parsing follows Docker's rules, so the same flags mean the same thing: sizes in binary units
(``k`` = 1024), a memory limit of at least 6 MiB, ``--memory-swap`` as memory *plus* swap
(``-1``: unlimited), ``--cpus`` as a number of CPUs between 0.01 and the CPUs this machine has.
"""

from __future__ import annotations

import os
import re

from kit.errors import KitError
from kit.spec import CpuResources, MemoryResources, PidsResources, Resources, Spec

#: The CFS period kit uses: quota/period is the share of one CPU (100 ms, as Docker).
CPU_PERIOD_US = 100_000

#: Below this, even a shell cannot start (Docker refuses less, with the same number).
MIN_MEMORY = 6 * 1024 * 1024

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$", re.IGNORECASE)


def parse_size(text: str, flag: str = "--memory") -> int:
    """``64m`` -> 67108864. Units b, k, m, g, t, p (powers of 1024; ``kb``/``KiB`` accepted)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise KitError(
            f"invalid {flag} {text!r}",
            cause="a size is a number with an optional unit: b, k, m, g (binary: 1k = 1024)",
            fix=f"write e.g. {flag} 64m or {flag} 1g",
            exit_code=2,
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def parse_memory(text: str) -> int:
    limit = parse_size(text, "--memory")
    if limit < MIN_MEMORY:
        raise KitError(
            f"--memory {text} is below the minimum of 6m",
            cause="the container's first process needs a few megabytes before your program "
            "even starts; a smaller limit would only produce an immediate OOM kill",
            fix="use --memory 6m or more",
            exit_code=2,
        )
    return limit


def parse_memory_swap(text: str, memory: int | None) -> int:
    """Memory plus swap, in bytes (``-1``: unlimited swap)."""
    if memory is None:
        raise KitError(
            "--memory-swap needs --memory",
            cause="it is the total of memory and swap, so it only means something with a "
            "memory limit",
            fix="add --memory, e.g. --memory 64m --memory-swap 128m",
            exit_code=2,
        )
    if text.strip() == "-1":
        return -1
    total = parse_size(text, "--memory-swap")
    if total < memory:
        raise KitError(
            f"--memory-swap {text} is smaller than --memory",
            cause="--memory-swap is memory plus swap, so it cannot be below the memory limit",
            fix="give a total at least as large as --memory (equal: no swap at all)",
            exit_code=2,
        )
    return total


def parse_cpus(text: str, available: int | None = None) -> tuple[int, int]:
    """``1.5`` -> (quota 150000 us, period 100000 us)."""
    cpus_here = available or os.cpu_count() or 1
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.01 <= value <= cpus_here:
        raise KitError(
            f"invalid --cpus {text!r}",
            cause=f"the range is 0.01 to {cpus_here} (this machine has {cpus_here} CPUs)",
            fix="write e.g. --cpus 0.5 (half of one CPU) or --cpus 1",
            exit_code=2,
        )
    return round(value * CPU_PERIOD_US), CPU_PERIOD_US


def parse_pids_limit(text: str) -> int:
    """A maximum number of processes (and threads); ``0`` or ``-1``: unlimited."""
    try:
        value = int(text)
    except ValueError:
        value = -2
    if value < -1:
        raise KitError(
            f"invalid --pids-limit {text!r}",
            cause="it counts processes and threads, so it is a whole number",
            fix="write e.g. --pids-limit 64 (or -1 for no limit)",
            exit_code=2,
        )
    return value if value > 0 else -1


def set_limits(
    spec: Spec,
    *,
    memory: int | None = None,
    memory_swap: int | None = None,
    pids: int | None = None,
    cpu: tuple[int, int] | None = None,
) -> None:
    """Record limits in ``spec.linux.resources`` (creating it as needed)."""
    if memory is None and pids is None and cpu is None:
        return
    resources = spec.linux.resources or Resources()
    if memory is not None:
        resources.memory = MemoryResources(limit=memory, swap=memory_swap)
    if pids is not None:
        resources.pids = PidsResources(limit=pids)
    if cpu is not None:
        resources.cpu = CpuResources(quota=cpu[0], period=cpu[1])
    spec.linux.resources = resources


def has_limits(spec: Spec) -> bool:
    """Whether the spec asks for any limit kit enforces through cgroups."""
    r = spec.linux.resources
    if r is None:
        return False
    memory = r.memory is not None and (r.memory.limit is not None or r.memory.swap is not None)
    cpu = r.cpu is not None and (r.cpu.quota is not None or r.cpu.shares is not None)
    return memory or cpu or r.pids is not None


def describe(spec: Spec) -> list[str]:
    """``["memory 64 MiB", "pids 32"]``: the limits in words, for messages and lessons."""
    r = spec.linux.resources
    out: list[str] = []
    if r is None:
        return out
    if r.memory is not None and r.memory.limit is not None:
        out.append(f"memory {r.memory.limit / (1 << 20):g} MiB")
    if r.pids is not None:
        out.append(f"pids {r.pids.limit if r.pids.limit > 0 else 'unlimited'}")
    if r.cpu is not None and r.cpu.quota is not None and r.cpu.period:
        out.append(f"cpus {r.cpu.quota / r.cpu.period:g}")
    return out
