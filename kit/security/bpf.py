"""Classic BPF, the tiny machine a seccomp filter is written for.

The kernel runs a seccomp filter on *every* system call the process makes. The filter is a
program for classic BPF (the packet-filter machine of 1992): one accumulator ``A``, a few
instruction kinds, jumps that only go forward (so every program ends), and a ``ret`` that
says what to do with the call. Its input is ``struct seccomp_data``::

    offset 0   int   nr                    the system call number
    offset 4   u32   arch                  AUDIT_ARCH_* of the calling convention
    offset 8   u64   instruction_pointer
    offset 16  u64   args[6]               the raw argument registers (little-endian words)

The filter sees numbers only: it cannot follow pointers, so it can check ``flags`` but not a
path name. Each instruction is 8 bytes: ``u16 code, u8 jt, u8 jf, u32 k`` (``struct
sock_filter``); conditional jumps skip ``jt``/``jf`` instructions forward (at most 255), and
``ja`` skips ``k``.

This module assembles such programs from named labels and prints them back readably
(:func:`disassemble`), which is how the lessons show a filter.
"""

from __future__ import annotations

import errno as errno_module
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from kit.errors import KitError

# Instruction classes, sizes, modes, operations (include/uapi/linux/bpf_common.h).
BPF_LD = 0x00
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_ABS = 0x20
BPF_K = 0x00
BPF_AND = 0x50
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40

LD_ABS = BPF_LD | BPF_W | BPF_ABS  # A = data[k] (32 bits)
AND_K = BPF_ALU | BPF_AND | BPF_K  # A &= k
JA = BPF_JMP | BPF_JA  # skip k instructions
JEQ = BPF_JMP | BPF_JEQ | BPF_K  # A == k ?
JGT = BPF_JMP | BPF_JGT | BPF_K  # A > k ? (unsigned)
JGE = BPF_JMP | BPF_JGE | BPF_K  # A >= k ? (unsigned)
JSET = BPF_JMP | BPF_JSET | BPF_K  # A & k != 0 ?
RET_K = BPF_RET | BPF_K  # return k

#: The kernel refuses longer programs (BPF_MAXINSNS).
MAX_INSTRUCTIONS = 4096

# struct seccomp_data offsets.
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_IP = 8


def arg_offset(index: int, high: bool) -> int:
    """Where the low or high 32-bit word of args[index] lies (little-endian machines)."""
    return 16 + 8 * index + (4 if high else 0)


# seccomp return values (include/uapi/linux/seccomp.h): the high 16 bits are the action, the
# low 16 bits its data (an errno for ERRNO, a message for TRACE).
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF

_RET_NAMES = {
    SECCOMP_RET_KILL_PROCESS: "KILL_PROCESS",
    SECCOMP_RET_KILL_THREAD: "KILL_THREAD",
    SECCOMP_RET_TRAP: "TRAP",
    SECCOMP_RET_ERRNO: "ERRNO",
    SECCOMP_RET_USER_NOTIF: "USER_NOTIF",
    SECCOMP_RET_TRACE: "TRACE",
    SECCOMP_RET_LOG: "LOG",
    SECCOMP_RET_ALLOW: "ALLOW",
}


def render_return(value: int) -> str:
    """``ALLOW``, ``ERRNO(1)``, ``KILL_PROCESS`` ..."""
    action = value & SECCOMP_RET_ACTION_FULL
    data = value & SECCOMP_RET_DATA
    name = _RET_NAMES.get(action, hex(action))
    if action in (SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE):
        if action == SECCOMP_RET_ERRNO:
            return f"ERRNO({data}) /* {errno_module.errorcode.get(data, '?')} */"
        return f"TRACE({data})"
    return name


def label_positions(items: Iterable[object]) -> dict[str, int]:
    """Where each label lands in an assembled program. A program under construction is a list
    of instructions with label names (``str``) between them; a label's position is the number of
    instructions before it, so a jump's offset is ``positions[target] - here - 1``."""
    positions: dict[str, int] = {}
    count = 0
    for item in items:
        if isinstance(item, str):
            positions[item] = count
        else:
            count += 1
    return positions


@dataclass
class Instruction:
    """One ``struct sock_filter``, plus a remark for the reader (never sent to the kernel)."""

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0
    comment: str = ""

    def pack(self) -> bytes:
        return struct.pack("=HBBI", self.code, self.jt, self.jf, self.k)


def encode(program: list[Instruction]) -> bytes:
    """The bytes the kernel receives: the instructions back to back."""
    return b"".join(i.pack() for i in program)


def decode(data: bytes) -> list[Instruction]:
    """Bytes back into instructions (without the remarks)."""
    return [Instruction(*struct.unpack_from("=HBBI", data, at)) for at in range(0, len(data), 8)]


@dataclass
class _Jump:
    code: int
    k: int
    jt: str | None  # label, or None for "the next instruction"
    jf: str | None
    comment: str


@dataclass
class Assembler:
    """Builds a program with named jump targets, then resolves them into skip counts."""

    _items: list[Instruction | _Jump | str] = field(default_factory=list)

    def label(self, name: str) -> None:
        self._items.append(name)

    def load(self, offset: int, comment: str = "") -> None:
        self._items.append(Instruction(LD_ABS, k=offset, comment=comment))

    def and_(self, mask: int, comment: str = "") -> None:
        self._items.append(Instruction(AND_K, k=mask, comment=comment))

    def jump_if(
        self,
        code: int,
        k: int,
        true: str | None = None,
        false: str | None = None,
        comment: str = "",
    ) -> None:
        """``if (A <op> k) goto true else goto false``; None means "fall through"."""
        self._items.append(_Jump(code, k, true, false, comment))

    def goto(self, target: str, comment: str = "") -> None:
        self._items.append(_Jump(JA, 0, target, None, comment))

    def ret(self, value: int, comment: str = "") -> None:
        self._items.append(Instruction(RET_K, k=value, comment=comment))

    def assemble(self) -> list[Instruction]:
        positions = label_positions(self._items)
        program: list[Instruction] = []
        for item in self._items:
            if isinstance(item, str):
                continue
            here = len(program)
            if isinstance(item, Instruction):
                program.append(item)
                continue
            if item.code == JA:
                assert item.jt is not None
                skip = positions[item.jt] - here - 1
                program.append(Instruction(JA, k=skip, comment=item.comment))
                continue
            jt = 0 if item.jt is None else positions[item.jt] - here - 1
            jf = 0 if item.jf is None else positions[item.jf] - here - 1
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise KitError(
                    "internal error: a BPF conditional jump is out of range",
                    cause=f"instruction {here} would skip {jt}/{jf} (the limit is 255)",
                    fix="report this; the filter compiler must use a goto for far targets",
                )
            program.append(Instruction(item.code, jt, jf, item.k, item.comment))
        if len(program) > MAX_INSTRUCTIONS:
            raise KitError(
                f"the seccomp filter has {len(program)} instructions",
                cause=f"the kernel accepts at most {MAX_INSTRUCTIONS} (BPF_MAXINSNS)",
                fix="simplify the profile: fewer argument rules, or fewer architectures",
            )
        return program


_LOADS = {OFFSET_NR: "A = nr", OFFSET_ARCH: "A = arch", OFFSET_IP: "A = instruction_pointer"}
_CONDITIONS = {JEQ: ("==", "!="), JGT: (">", "<="), JGE: (">=", "<"), JSET: ("&", "!&")}


def _load_text(k: int) -> str:
    if k in _LOADS:
        return _LOADS[k]
    if 16 <= k < 64:
        index, word = divmod(k - 16, 8)
        return f"A = args[{index}] {'high' if word else 'low'} word"
    return f"A = data[{k}]"


def describe(index: int, ins: Instruction) -> str:
    """Pseudo-C for one instruction at position ``index``."""
    if ins.code == LD_ABS:
        return _load_text(ins.k)
    if ins.code == AND_K:
        return f"A &= {ins.k:#x}"
    if ins.code == RET_K:
        return f"return {render_return(ins.k)}"
    if ins.code == JA:
        return f"goto {index + 1 + ins.k:04d}"
    if ins.code in _CONDITIONS:
        yes, no = _CONDITIONS[ins.code]
        value = f"{ins.k:#x}"
        if ins.code == JSET:
            test_true, test_false = f"A & {value}", f"!(A & {value})"
        else:
            test_true, test_false = f"A {yes} {value}", f"A {no} {value}"
        true_at, false_at = index + 1 + ins.jt, index + 1 + ins.jf
        if ins.jt == 0:
            return f"if ({test_false}) goto {false_at:04d}"
        if ins.jf == 0:
            return f"if ({test_true}) goto {true_at:04d}"
        return f"if ({test_true}) goto {true_at:04d} else goto {false_at:04d}"
    return f"code {ins.code:#06x} (not used by kit)"


def disassemble(program: list[Instruction]) -> list[str]:
    """The program as numbered lines: raw fields, pseudo-C and the compiler's remark.

    ::

        0000  20 00 00 00000004  A = arch
        0001  15 01 00 c000003e  if (A == 0xc000003e) goto 0003        # AUDIT_ARCH_X86_64
    """
    lines = []
    for index, ins in enumerate(program):
        text = describe(index, ins)
        raw = f"{ins.code:02x} {ins.jt:02x} {ins.jf:02x} {ins.k:08x}"
        remark = f"  # {ins.comment}" if ins.comment else ""
        lines.append(f"{index:04d}  {raw}  {text:<40}{remark}".rstrip())
    return lines
