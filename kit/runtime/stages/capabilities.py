"""Stage ``capabilities``: keep only the capabilities the spec lists, in all five sets.

After the ``identity`` stage the process runs as the container's user, still holding every
capability in its permitted set (identity set PR_SET_KEEPCAPS for that). This stage then:

1. makes the permitted set effective again (a change away from uid 0 empties the effective
   set), because the next steps need CAP_SETPCAP;
2. drops from the **bounding** set every capability the spec does not list. The bounding set
   is the ceiling for the rest of the container's life: no execve, not even of a setuid-root
   program, can bring back what is gone from it;
3. clears the **ambient** set, then sets **effective**, **permitted** and **inheritable**
   exactly as listed with one capset(2);
4. raises the **ambient** capabilities listed (each must be permitted and inheritable): these
   are the ones a non-root user keeps across execve of an ordinary program.

What the program finally gets is decided at execve: a root process gets its bounding set
(when no_new_privs is off) or what it had permitted (when on); a non-root process gets its
ambient set. That is why the probe report reads /proc/self/status from a *program run in the
container*, not from kit.

A spec without ``process.capabilities`` leaves the capabilities as the kernel's uid rules
make them (root keeps everything, other users have none), as the OCI spec asks.
"""

from __future__ import annotations

from kit.errors import KitError
from kit.linux import caps
from kit.runtime.context import InitContext
from kit.runtime.stages import seccomp
from kit.trace import Event, tracer


def _mask(names: list[str], last: int, set_name: str) -> int:
    mask = 0
    for name in names:
        number = caps.CAP_NUMBERS.get(name)
        if number is None:
            raise KitError(
                f"process.capabilities.{set_name}: unknown capability {name!r}",
                fix="use the names of capabilities(7), e.g. CAP_NET_BIND_SERVICE",
            )
        if number > last:
            # A capability newer than this kernel: nothing to keep or drop.
            log = tracer()
            if log.active:
                log.emit(Event("info", "info", message=f"{name} is unknown to this kernel"))
            continue
        mask |= 1 << number
    return mask


def run(ctx: InitContext) -> None:
    wanted = ctx.spec.process.capabilities
    if wanted is None:
        return
    last = caps.last_cap()
    bounding = _mask(wanted.bounding, last, "bounding")
    target = caps.CapSets(
        effective=_mask(wanted.effective, last, "effective"),
        permitted=_mask(wanted.permitted, last, "permitted"),
        inheritable=_mask(wanted.inheritable, last, "inheritable"),
    )
    ambient = _mask(wanted.ambient, last, "ambient")
    now = caps.capget()
    caps.capset(
        caps.CapSets(now.permitted, now.permitted, now.inheritable),
        note="make every permitted capability effective for the steps below",
    )
    if seccomp.must_install_early(ctx):
        seccomp.install(
            ctx, note="no_new_privs is off: install the filter while CAP_SYS_ADMIN is held"
        )
    for number in range(last + 1):
        if not bounding >> number & 1 and caps.bounding_has(number):
            caps.bounding_drop(number)
    caps.ambient_clear_all()
    caps.capset(target, note="the container's effective, permitted and inheritable sets")
    for number in caps.numbers_of(ambient):
        caps.ambient_raise(number)
