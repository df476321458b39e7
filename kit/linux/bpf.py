"""bpf(2): load an eBPF program into the kernel and attach it to a cgroup.

One system call with many commands. kit uses three of them, for cgroup v2's device control
(see :mod:`kit.security.device_filter`, which writes the program):

    BPF_PROG_LOAD    hand the kernel a program; its *verifier* proves it safe (every path
                     ends, no read outside the context, a return value in range) or refuses
                     it with a log of why. Success returns a file descriptor for the program.
    BPF_PROG_ATTACH  attach a loaded program to a cgroup (an open cgroup directory) at an
                     attach point: BPF_CGROUP_DEVICE runs it on every device access of every
                     process in the cgroup and its descendants.
    BPF_PROG_QUERY   which programs are attached to a cgroup (their ids, as bpftool shows).

The cgroup keeps an attached program alive: the file descriptor may be closed, and removing
the cgroup detaches and frees the program. Loading and attaching need CAP_SYS_ADMIN (or
CAP_BPF and CAP_NET_ADMIN) in the initial user namespace: root on the host, never rootless.
"""

from __future__ import annotations

import ctypes
import errno as E

from kit.errors import KitError
from kit.linux.explain import EXPLANATIONS
from kit.linux.flags import FlagSet
from kit.linux.syscall import quote, raw_syscall, traced

# Commands (enum bpf_cmd in include/uapi/linux/bpf.h).
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_QUERY = 16

# Program types (enum bpf_prog_type) and attach types (enum bpf_attach_type).
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6

# Attach flags. Without a flag, a cgroup holds one program and its descendants may not attach
# their own. ALLOW_MULTI: several programs per cgroup, and every program on the way from the
# cgroup up to the root runs; an access is allowed only if all of them allow it.
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2

#: Query flag: list every program that runs for the cgroup (its ancestors' too).
BPF_F_QUERY_EFFECTIVE = 1

_TYPE_NAMES = {BPF_PROG_TYPE_CGROUP_DEVICE: "BPF_PROG_TYPE_CGROUP_DEVICE"}
_ATTACH_NAMES = {BPF_CGROUP_DEVICE: "BPF_CGROUP_DEVICE"}
ATTACH_FLAGS = FlagSet(
    (
        ("BPF_F_ALLOW_OVERRIDE", BPF_F_ALLOW_OVERRIDE),
        ("BPF_F_ALLOW_MULTI", BPF_F_ALLOW_MULTI),
    )
)

#: How much of the verifier's explanation kit asks for when a program is refused.
VERIFIER_LOG_SIZE = 1 << 16


class _ProgLoad(ctypes.Structure):
    """The BPF_PROG_LOAD member of ``union bpf_attr`` (the fields kit sets; the kernel
    treats the missing tail as zeros)."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttach(ctypes.Structure):
    """The BPF_PROG_ATTACH/DETACH member of ``union bpf_attr``."""

    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _ProgQuery(ctypes.Structure):
    """The BPF_PROG_QUERY member of ``union bpf_attr``."""

    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("prog_ids", ctypes.c_uint64),
        ("prog_cnt", ctypes.c_uint32),
    ]


def _bpf(command: int, attr: ctypes.Structure) -> int:
    return raw_syscall(
        "bpf", ctypes.c_int(command), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))
    )


def prog_load(
    instructions: bytes,
    *,
    prog_type: int = BPF_PROG_TYPE_CGROUP_DEVICE,
    expected_attach_type: int = BPF_CGROUP_DEVICE,
    license: str = "Apache",
    name: str = "kit",
    note: str | None = None,
) -> int:
    """Load a program (``struct bpf_insn[]`` as bytes); returns its file descriptor.

    The first try asks for no verifier log (cheaper). If the kernel refuses the program, it
    is loaded once more with a log buffer, and the verifier's own words become the error.
    The license matters: the kernel lets only GPL-compatible programs call GPL-only helpers
    (a device filter calls none; runc says "Apache", kit does too).
    """
    try:
        return _load(instructions, prog_type, expected_attach_type, license, name, note=note)
    except KitError as error:
        if error.errno not in (E.EACCES, E.EINVAL):
            raise
        log = ctypes.create_string_buffer(VERIFIER_LOG_SIZE)
        try:
            fd = _load(instructions, prog_type, expected_attach_type, license, name, log=log)
        except KitError:
            pass
        else:  # accepted the second time (it should not happen): use it
            return fd
        text = log.value.decode(errors="replace").strip()
        raise KitError(
            f"the kernel's BPF verifier refused the {name} program "
            f"({len(instructions) // 8} instructions)",
            errno=error.errno,
            cause="the verifier proves a program safe before it may run in the kernel (every "
            "path ends in exit with r0 set, only the context's fields are read); it said:\n"
            + (text or "(no log)"),
            fix="this is a bug in kit's program generator: report it with the disassembly "
            "(kit.security.device_filter.disassemble) and the log above",
        ) from None


def _load(
    instructions: bytes,
    prog_type: int,
    expected_attach_type: int,
    license: str,
    name: str,
    *,
    log: ctypes.Array[ctypes.c_char] | None = None,
    note: str | None = None,
) -> int:
    code = ctypes.create_string_buffer(instructions, len(instructions))
    license_text = ctypes.create_string_buffer(license.encode())
    attr = _ProgLoad(
        prog_type=prog_type,
        insn_cnt=len(instructions) // 8,
        insns=ctypes.addressof(code),
        license=ctypes.addressof(license_text),
        log_level=1 if log is not None else 0,
        log_size=len(log) if log is not None else 0,
        log_buf=ctypes.addressof(log) if log is not None else 0,
        prog_name=name.encode()[:15],
        expected_attach_type=expected_attach_type,
    )
    args = [
        "BPF_PROG_LOAD",
        f"{{prog_type={_TYPE_NAMES.get(prog_type, prog_type)}, insn_cnt={attr.insn_cnt}, "
        f"license={quote(license)}, prog_name={quote(name)}"
        + (", log_level=1}" if log is not None else "}"),
    ]
    return traced("bpf", args, lambda: _bpf(BPF_PROG_LOAD, attr), context={"name": name}, note=note)


def prog_attach(
    cgroup_fd: int,
    prog_fd: int,
    *,
    attach_type: int = BPF_CGROUP_DEVICE,
    flags: int = BPF_F_ALLOW_MULTI,
    shown: str | None = None,
    note: str | None = None,
) -> None:
    """Attach a loaded program to the cgroup open at ``cgroup_fd``."""
    attr = _ProgAttach(
        target_fd=cgroup_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags
    )
    target = quote(shown) if shown else str(cgroup_fd)
    args = [
        "BPF_PROG_ATTACH",
        f"{{target_fd={target}, attach_bpf_fd={prog_fd}, "
        f"attach_type={_ATTACH_NAMES.get(attach_type, attach_type)}, "
        f"attach_flags={ATTACH_FLAGS.render(flags)}}}",
    ]
    traced(
        "bpf",
        args,
        lambda: _bpf(BPF_PROG_ATTACH, attr),
        context={"path": shown or cgroup_fd},
        note=note,
    )


def prog_query(
    cgroup_fd: int, *, attach_type: int = BPF_CGROUP_DEVICE, effective: bool = False
) -> list[int]:
    """The ids of the programs attached to a cgroup (``effective``: also those inherited from
    its ancestors, i.e. every program that runs for it). Untraced: it changes nothing."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _ProgQuery(
        target_fd=cgroup_fd,
        attach_type=attach_type,
        query_flags=BPF_F_QUERY_EFFECTIVE if effective else 0,
        prog_ids=ctypes.addressof(ids),
        prog_cnt=len(ids),
    )
    try:
        _bpf(BPF_PROG_QUERY, attr)
    except OSError as error:
        raise KitError(
            "bpf(BPF_PROG_QUERY) on a cgroup failed",
            errno=error.errno,
            cause="querying a cgroup's programs needs CAP_SYS_ADMIN (or CAP_NET_ADMIN), and a "
            "cgroup v2 directory",
            fix="run as root, on a directory of the unified (cgroup2) tree",
        ) from None
    return list(ids[: attr.prog_cnt])


EXPLANATIONS.update(
    {
        ("bpf", E.EPERM): (
            "loading or attaching BPF programs needs CAP_SYS_ADMIN (or CAP_BPF and "
            "CAP_NET_ADMIN) in the host's user namespace; rootless kit never has it",
            "run kit as root (a rootless container has no device cgroup: it cannot create "
            "device nodes in the first place)",
        ),
        ("bpf", E.EBADF): (
            "the target {path} is not an open cgroup v2 directory (a v1 hierarchy cannot "
            "hold BPF programs)",
            "attach to a directory of the unified (cgroup2) tree",
        ),
        ("bpf", E.ENOSYS): (
            "this kernel was built without the bpf(2) system call",
            "use a kernel with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF",
        ),
        ("bpf", E.EINVAL): (
            "the kernel does not know this program type, attach type or flag (a kernel "
            "without CONFIG_CGROUP_BPF, or older than 4.15)",
            "use a newer kernel; `kit doctor` shows what this one supports",
        ),
    }
)
