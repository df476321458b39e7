"""eBPF, the kernel's general virtual machine, in the few instructions a device filter needs.

Classic BPF (:mod:`kit.security.bpf`, seccomp's machine) has one accumulator. eBPF, its 2014
successor, looks like a small real CPU: eleven 64-bit registers, ``r0`` to ``r10``. When a
program starts, ``r1`` points at its *context* (for a device filter, the device being asked
for); ``r0`` holds the result when it ends with ``exit``; ``r10`` is a read-only frame
pointer. Each instruction is 8 bytes (``struct bpf_insn``)::

    u8  code   the operation: its class in the low 3 bits, then the operand source
               (K: the immediate, X: a register) and the operation itself
    u8  regs   the destination register in the low 4 bits, the source register in the high 4
    s16 off    a jump distance (in instructions, counted from the next one), or a memory offset
    s32 imm    the immediate operand

Arithmetic comes in 64-bit (``BPF_ALU64``) and 32-bit (``BPF_ALU``) forms; a 32-bit operation
works on the low half of a register, written ``w2`` for ``r2``, and clears the upper half.
Before a program may run, the kernel's *verifier* walks every path through it: no path may
read an uninitialised register, read outside the context, or miss the final ``exit``.

This module assembles programs from named labels and prints them back as the pseudo-C the
kernel's verifier uses in its logs (:func:`disassemble`), which is how lessons show them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from kit.errors import KitError
from kit.security.bpf import label_positions

# Instruction classes (include/uapi/linux/bpf_common.h and bpf.h).
BPF_LDX = 0x01
BPF_ALU = 0x04  # 32-bit arithmetic
BPF_JMP = 0x05
# Sizes and modes for loads.
BPF_W = 0x00  # 32-bit word
BPF_MEM = 0x60
# Operand source.
BPF_K = 0x00  # the immediate
BPF_X = 0x08  # a register
# Operations.
BPF_AND = 0x50
BPF_RSH = 0x70
BPF_MOV = 0xB0
BPF_JNE = 0x50
BPF_EXIT = 0x90

LDX_W = BPF_LDX | BPF_MEM | BPF_W  # dst = *(u32 *)(src + off)
AND32_K = BPF_ALU | BPF_AND | BPF_K  # wdst &= imm
RSH32_K = BPF_ALU | BPF_RSH | BPF_K  # wdst >>= imm
MOV32_K = BPF_ALU | BPF_MOV | BPF_K  # wdst = imm
MOV32_X = BPF_ALU | BPF_MOV | BPF_X  # wdst = wsrc
JNE_K = BPF_JMP | BPF_JNE | BPF_K  # if dst != imm goto +off
JNE_X = BPF_JMP | BPF_JNE | BPF_X  # if dst != src goto +off
EXIT = BPF_JMP | BPF_EXIT  # return r0

#: Registers by number.
R0, R1, R2, R3, R4, R5 = range(6)


@dataclass
class Instruction:
    """One ``struct bpf_insn``, plus a remark for the reader (never sent to the kernel)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    comment: str = ""

    def pack(self) -> bytes:
        # Little-endian machines (x86_64, aarch64): dst_reg is the low nibble of byte 1.
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)


def encode(program: list[Instruction]) -> bytes:
    """The bytes the kernel receives: the instructions back to back."""
    return b"".join(i.pack() for i in program)


def decode(data: bytes) -> list[Instruction]:
    """Bytes back into instructions (without the remarks)."""
    program = []
    for at in range(0, len(data), 8):
        code, regs, off, imm = struct.unpack_from("<BBhi", data, at)
        program.append(Instruction(code, regs & 0x0F, regs >> 4, off, imm))
    return program


@dataclass
class _Jump:
    code: int
    dst: int
    src: int
    imm: int
    target: str
    comment: str


@dataclass
class Assembler:
    """Builds a program with named jump targets, then resolves them into offsets."""

    _items: list[Instruction | _Jump | str] = field(default_factory=list)

    def label(self, name: str) -> None:
        self._items.append(name)

    def load_word(self, dst: int, base: int, offset: int, comment: str = "") -> None:
        self._items.append(Instruction(LDX_W, dst, base, offset, 0, comment))

    def and32(self, dst: int, mask: int, comment: str = "") -> None:
        self._items.append(Instruction(AND32_K, dst, imm=mask, comment=comment))

    def shift_right32(self, dst: int, bits: int, comment: str = "") -> None:
        self._items.append(Instruction(RSH32_K, dst, imm=bits, comment=comment))

    def move32(self, dst: int, src: int, comment: str = "") -> None:
        self._items.append(Instruction(MOV32_X, dst, src, comment=comment))

    def set32(self, dst: int, value: int, comment: str = "") -> None:
        self._items.append(Instruction(MOV32_K, dst, imm=value, comment=comment))

    def jump_if_not(
        self,
        dst: int,
        target: str,
        *,
        value: int = 0,
        register: int | None = None,
        comment: str = "",
    ) -> None:
        """``if (dst != value) goto target`` (or ``dst != register``)."""
        if register is None:
            self._items.append(_Jump(JNE_K, dst, 0, value, target, comment))
        else:
            self._items.append(_Jump(JNE_X, dst, register, 0, target, comment))

    def exit(self, comment: str = "") -> None:
        self._items.append(Instruction(EXIT, comment=comment))

    def assemble(self) -> list[Instruction]:
        positions = label_positions(self._items)
        program: list[Instruction] = []
        for item in self._items:
            if isinstance(item, str):
                continue
            if isinstance(item, Instruction):
                program.append(item)
                continue
            here = len(program)
            offset = positions[item.target] - here - 1
            if not 0 <= offset <= 0x7FFF:
                raise KitError(
                    "internal error: an eBPF jump is out of range",
                    cause=f"instruction {here} would jump {offset} instructions",
                    fix="report this; kit's device filters only jump forward",
                )
            program.append(
                Instruction(item.code, item.dst, item.src, offset, item.imm, item.comment)
            )
        return program


def describe(index: int, ins: Instruction) -> str:
    """Pseudo-C for one instruction at position ``index`` (the verifier log's notation)."""
    if ins.code == LDX_W:
        sign = "-" if ins.off < 0 else "+"
        return f"r{ins.dst} = *(u32 *)(r{ins.src} {sign} {abs(ins.off)})"
    if ins.code == AND32_K:
        return f"w{ins.dst} &= {ins.imm:#x}"
    if ins.code == RSH32_K:
        return f"w{ins.dst} >>= {ins.imm}"
    if ins.code == MOV32_K:
        return f"w{ins.dst} = {ins.imm}"
    if ins.code == MOV32_X:
        return f"w{ins.dst} = w{ins.src}"
    if ins.code == JNE_K:
        return f"if r{ins.dst} != {ins.imm} goto {index + 1 + ins.off:04d}"
    if ins.code == JNE_X:
        return f"if r{ins.dst} != r{ins.src} goto {index + 1 + ins.off:04d}"
    if ins.code == EXIT:
        return "exit"
    return f"code {ins.code:#04x} (not used by kit)"


def disassemble(program: list[Instruction]) -> list[str]:
    """The program as numbered lines: raw fields, pseudo-C and the compiler's remark.

    ::

        0000  61 12 0000 00000000  r2 = *(u32 *)(r1 + 0)             # access_type
        0006  55 02 0005 00000002  if r2 != 2 goto 0012              # rule "allow c *:* m"...
    """
    lines = []
    for index, ins in enumerate(program):
        raw = f"{ins.code:02x} {(ins.src << 4) | ins.dst:02x} {ins.off & 0xFFFF:04x} "
        raw += f"{ins.imm & 0xFFFFFFFF:08x}"
        remark = f"  # {ins.comment}" if ins.comment else ""
        lines.append(f"{index:04d}  {raw}  {describe(index, ins):<32}{remark}".rstrip())
    return lines
