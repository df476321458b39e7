"""Compiling a seccomp profile into the BPF program the kernel runs on every system call.

The program kit writes has the same shape every time, readable top to bottom::

    A = arch
    if (A == AUDIT_ARCH_X86_64) goto x86_64       one section per architecture
    if (A == AUDIT_ARCH_I386) goto x86            (only those the profile lists)
    return KILL_PROCESS                           any other calling convention: refuse

    x86_64:
    A = nr
    if (A >= 0x40000000) return KILL_PROCESS      x32 ABI numbers: refused
    if (A > 450) return ERRNO(ENOSYS)             newer than the profile: "not implemented"
    if (A == read) return ALLOW                   one test per system call, in number order
    if (A == socket) goto socket_rules            calls with argument rules jump to a block
    ...
    return ERRNO(EPERM)                           everything else: the default action

**Why the architecture comes first**: a system call number means nothing on its own. On an
x86_64 kernel, a program can also make 32-bit x86 calls (``int 0x80``), where 11 is
``execve`` instead of ``munmap``. A filter that checked numbers without the architecture
could be bypassed by switching calling conventions.

**Why ENOSYS above the highest known number**: C libraries try new system calls first and
fall back to older ones only when the kernel answers ENOSYS ("not implemented"). A call the
profile has never heard of is most likely newer than the profile, so it gets ENOSYS, not the
default EPERM, which the library would take as a real refusal (runc does the same).

**Argument rules** compare the 64-bit argument registers in two 32-bit halves (classic BPF
has 32-bit registers). Rules for one system call are tried in profile order; the first whose
conditions all hold decides. When one rule lists the same argument twice, each condition
becomes a rule of its own (they are alternatives, as runc reads them). Rules whose action is
the default action are left out: they change nothing.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from kit.errors import KitError
from kit.security import bpf
from kit.security.seccomp_profile import ARCHITECTURES, NATIVE, Condition, Profile, Rule
from kit.security.syscall_tables import TABLES

#: x32 system calls are x86_64 calls with this bit set in the number (__X32_SYSCALL_BIT).
X32_SYSCALL_BIT = 0x40000000

#: Other ABIs a kernel of this architecture also runs (and kit has a table for).
COMPAT = {"SCMP_ARCH_X86_64": ("SCMP_ARCH_X86",)}


@dataclass
class Section:
    """One architecture's part of the filter."""

    scmp_name: str
    table_name: str
    audit_arch: int
    #: syscall number -> (name, rules in profile order)
    calls: dict[int, tuple[str, list[Rule]]] = field(default_factory=dict)


def sections_for(profile: Profile, machine: str | None = None) -> list[Section]:
    """The architectures the filter handles: this machine's, plus the listed ones it can run.

    An x86_64 kernel also runs 32-bit x86 programs, so a profile listing SCMP_ARCH_X86 gets
    an x86 section; architectures this machine cannot run need no section (their calls
    cannot happen here), and every unlisted one is refused by the architecture check.
    """
    machine = machine or os.uname().machine
    if machine not in NATIVE:
        raise KitError(
            f"kit cannot build seccomp filters for {machine}",
            cause="kit has system call tables for x86_64 and aarch64 only",
            fix="run without seccomp (--security-opt seccomp=unconfined)",
        )
    native = NATIVE[machine][0]
    names = [native] + [a for a in profile.architectures if a in COMPAT.get(native, ())]
    sections = []
    for name in dict.fromkeys(names):
        known = ARCHITECTURES[name]
        assert known is not None
        sections.append(Section(name, known[0], known[1]))
    return sections


def _split_alternatives(rule: Rule) -> list[Rule]:
    indexes = [c.index for c in rule.conditions]
    if len(indexes) == len(set(indexes)):
        return [rule]
    return [Rule(rule.names, rule.action, [c]) for c in rule.conditions]


def _collect(section: Section, profile: Profile) -> None:
    table = TABLES[section.table_name]
    for rule in profile.rules:
        if rule.action == profile.default_action:
            continue
        for alternative in _split_alternatives(rule):
            for name in rule.names:
                number = table.get(name)
                if number is None:
                    continue  # not a system call on this architecture
                section.calls.setdefault(number, (name, []))[1].append(alternative)


def compile_profile(profile: Profile, machine: str | None = None) -> list[bpf.Instruction]:
    """The BPF program for ``profile`` on this machine (see the module docstring)."""
    sections = sections_for(profile, machine)
    asm = bpf.Assembler()
    default = profile.default_action.value
    kill = bpf.SECCOMP_RET_KILL_PROCESS
    asm.load(bpf.OFFSET_ARCH, "which calling convention made this call?")
    for section in sections:
        other = f"{section.scmp_name}:other"
        asm.jump_if(bpf.JEQ, section.audit_arch, false=other, comment=section.scmp_name)
        asm.goto(section.scmp_name)
        asm.label(other)
    asm.ret(kill, "an architecture the profile does not allow")
    blocks: list[tuple[str, str, list[Rule]]] = []
    for section in sections:
        _collect(section, profile)
        asm.label(section.scmp_name)
        asm.load(bpf.OFFSET_NR, f"system call number ({section.table_name})")
        if section.scmp_name == "SCMP_ARCH_X86_64":
            asm.jump_if(bpf.JGE, X32_SYSCALL_BIT, false=f"{section.scmp_name}:abi")
            asm.ret(kill, "x32 ABI system calls are refused")
            asm.label(f"{section.scmp_name}:abi")
        if default not in (bpf.SECCOMP_RET_ALLOW, bpf.SECCOMP_RET_LOG):
            highest = max(TABLES[section.table_name][n] for n in _all_names(profile, section))
            asm.jump_if(bpf.JGT, highest, false=f"{section.scmp_name}:known")
            asm.ret(
                bpf.SECCOMP_RET_ERRNO | errno.ENOSYS,
                f"newer than every call in the profile (> {highest})",
            )
            asm.label(f"{section.scmp_name}:known")
        for number in sorted(section.calls):
            name, rules = section.calls[number]
            if len(rules) == 1 and not rules[0].conditions:
                asm.jump_if(
                    bpf.JEQ, number, false=f"{section.scmp_name}:{number}:next", comment=name
                )
                asm.ret(rules[0].action.value, name)
            else:
                block = f"{section.scmp_name}:{name}"
                asm.jump_if(
                    bpf.JEQ, number, false=f"{section.scmp_name}:{number}:next", comment=name
                )
                asm.goto(block, f"{name} has argument rules")
                blocks.append((block, name, rules))
            asm.label(f"{section.scmp_name}:{number}:next")
        asm.ret(default, "the default action")
    for block, name, rules in blocks:
        asm.label(block)
        for position, rule in enumerate(rules):
            failed = f"{block}:rule{position + 1}"
            for number, condition in enumerate(rule.conditions):
                _condition(asm, condition, failed, f"{failed}:ok{number}", name)
            asm.ret(rule.action.value, f"{name}: every condition held")
            asm.label(failed)
            if not rule.conditions:
                break  # an unconditional rule decides; later ones are unreachable
        else:
            asm.ret(default, f"{name}: no rule matched, the default action")
    return asm.assemble()


def _all_names(profile: Profile, section: Section) -> list[str]:
    table = TABLES[section.table_name]
    names = [n for rule in profile.rules for n in rule.names if n in table]
    return names or ["restart_syscall"]


def _condition(asm: bpf.Assembler, c: Condition, failed: str, ok: str, name: str) -> None:
    """Fall through if ``args[index] <op> value`` holds, else jump to ``failed``.

    The argument is 64 bits; the high words are compared first, and the low words decide
    only when the high words are equal (an unsigned comparison, as libseccomp does).
    """
    hi, lo = bpf.arg_offset(c.index, high=True), bpf.arg_offset(c.index, high=False)
    v_hi, v_lo = c.value >> 32, c.value & 0xFFFFFFFF
    what = f"{name}: args[{c.index}] {c.op[9:]} {c.value:#x}"
    if c.op == "SCMP_CMP_MASKED_EQ":
        t_hi, t_lo = c.value_two >> 32, c.value_two & 0xFFFFFFFF
        asm.load(hi, what + f" == {c.value_two:#x}")
        asm.and_(v_hi)
        asm.jump_if(bpf.JEQ, t_hi, false=failed)
        asm.load(lo)
        asm.and_(v_lo)
        asm.jump_if(bpf.JEQ, t_lo, false=failed)
        return
    asm.load(hi, what)
    if c.op == "SCMP_CMP_EQ":
        asm.jump_if(bpf.JEQ, v_hi, false=failed)
        asm.load(lo)
        asm.jump_if(bpf.JEQ, v_lo, false=failed)
        return
    if c.op == "SCMP_CMP_NE":
        asm.jump_if(bpf.JEQ, v_hi, false=ok)
        asm.load(lo)
        asm.jump_if(bpf.JEQ, v_lo, true=failed)
    elif c.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        asm.jump_if(bpf.JGT, v_hi, true=ok)  # high word bigger: the whole value is bigger
        asm.jump_if(bpf.JEQ, v_hi, false=failed)  # high word smaller: it is smaller
        asm.load(lo)
        low_test = bpf.JGT if c.op == "SCMP_CMP_GT" else bpf.JGE
        asm.jump_if(low_test, v_lo, false=failed)
    else:  # SCMP_CMP_LT, SCMP_CMP_LE
        asm.jump_if(bpf.JGE, v_hi, false=ok)  # high word smaller: the whole value is smaller
        asm.jump_if(bpf.JGT, v_hi, true=failed)  # high word bigger: it is bigger
        asm.load(lo)
        low_test = bpf.JGE if c.op == "SCMP_CMP_LT" else bpf.JGT
        asm.jump_if(low_test, v_lo, true=failed)
    asm.label(ok)
