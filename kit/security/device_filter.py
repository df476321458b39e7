"""Compiling a device policy into the eBPF program cgroup v2 runs on every device access.

cgroup v2 has no ``devices.allow``: a program of type BPF_PROG_TYPE_CGROUP_DEVICE, attached
to the container's cgroup, decides. The kernel calls it whenever a process in the cgroup
opens a device node or creates one with mknod, with ``r1`` pointing at::

    struct bpf_cgroup_dev_ctx {
        u32 access_type;   low 16 bits: the device type (1 block, 2 character)
                           high 16 bits: the access asked for (1 mknod, 2 read, 4 write)
        u32 major;
        u32 minor;
    };

and the program returns 1 (allow) or 0 (the call fails with EPERM). kit writes the program
runc writes (libcontainer/cgroups/devices/devicefilter.go, itself from crun), readable top
to bottom::

    r2 = type, r3 = access, r4 = major, r5 = minor     unpack the context once
    rule 1:  if r2 != type  goto rule 2                 one block per exception of the policy
             if (r3 & allowed) != r3  goto rule 2       (asks for a letter the rule lacks)
             if r4 != major goto rule 2                 (left out for a * major)
             if r5 != minor goto rule 2                 (left out for a * minor)
             r0 = 1 (allow); exit                       the exception's verdict
    rule 2:  ...
    default: r0 = 0 (deny); exit                        no exception matched: the default

The blocks come from the *folded* policy (:func:`kit.cgroups.device_rules.fold`): every
exception has the same verdict (the opposite of the default), so their order does not matter
and the program behaves exactly as the v1 controller fed the same rules.
"""

from __future__ import annotations

from kit.cgroups.device_rules import DevicePolicy, Entry
from kit.security import ebpf
from kit.security.ebpf import R0, R1, R2, R3, R4, R5, Assembler, Instruction

# include/uapi/linux/bpf.h
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

#: Device type letters -> the context's type numbers.
DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
#: Access letters -> the context's access bits.
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
ALL_ACCESS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE

# Offsets in struct bpf_cgroup_dev_ctx.
ACCESS_TYPE, MAJOR, MINOR = 0, 4, 8

#: What kit tells the kernel the program's license is (it calls no GPL-only helper).
LICENSE = "Apache"


def access_bits(access: str) -> int:
    """``"rw"`` -> BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE."""
    bits = 0
    for letter in access:
        bits |= ACCESS_BITS[letter]
    return bits


def compile_policy(policy: DevicePolicy) -> list[Instruction]:
    """The program for ``policy``, with a remark on each instruction for the reader."""
    asm = Assembler()
    asm.load_word(R2, R1, ACCESS_TYPE, "access_type")
    asm.and32(R2, 0xFFFF, "r2 = device type (1 block, 2 char)")
    asm.load_word(R3, R1, ACCESS_TYPE, "access_type")
    asm.shift_right32(R3, 16, "r3 = access asked (1 mknod, 2 read, 4 write)")
    asm.load_word(R4, R1, MAJOR, "r4 = major")
    asm.load_word(R5, R1, MINOR, "r5 = minor")
    verdict = 0 if policy.default_allow else 1
    for index, entry in enumerate(policy.entries):
        asm.label(f"rule{index}")
        _rule_block(asm, entry, verdict, next_block=f"rule{index + 1}")
    asm.label(f"rule{len(policy.entries)}")
    default = 1 if policy.default_allow else 0
    asm.set32(R0, default, f"no rule matched: the default, {_word(default)}")
    asm.exit()
    return asm.assemble()


def _rule_block(asm: Assembler, entry: Entry, verdict: int, next_block: str) -> None:
    """One exception: fall through to its verdict only if type, access and numbers match."""
    action = "allow" if verdict else "deny"
    kind = "block" if entry.type == "b" else "char"
    asm.jump_if_not(
        R2,
        next_block,
        value=DEVICE_TYPES[entry.type],
        comment=f'rule "{action} {entry.line()}": a {kind} device?',
    )
    wanted = access_bits(entry.access)
    if wanted != ALL_ACCESS:  # rwm covers every request: no test needed
        asm.move32(R1, R3)
        asm.and32(R1, wanted, f"keep the letters {entry.access}")
        asm.jump_if_not(R1, next_block, register=R3, comment="nothing else asked?")
    if entry.major is not None:
        asm.jump_if_not(R4, next_block, value=entry.major, comment=f"major {entry.major}?")
    if entry.minor is not None:
        asm.jump_if_not(R5, next_block, value=entry.minor, comment=f"minor {entry.minor}?")
    asm.set32(R0, verdict, f"yes: {_word(verdict)}")
    asm.exit()


def _word(verdict: int) -> str:
    return "allow" if verdict else "deny (EPERM)"


def disassemble(policy: DevicePolicy) -> list[str]:
    """The program for ``policy`` as numbered lines of pseudo-C (see kit.security.ebpf)."""
    return ebpf.disassemble(compile_policy(policy))
