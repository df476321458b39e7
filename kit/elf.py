"""A small ELF reader: which loader and which libraries a program needs before it can run.

When the kernel ``exec``s a dynamically linked program it does not run the program first: it
reads the program's *interpreter* (the ``PT_INTERP`` program header, e.g.
``/lib64/ld-linux-x86-64.so.2``) and runs that loader instead, which then maps the libraries
listed as ``DT_NEEDED`` in the program's dynamic section. If the interpreter file does not
exist *inside the container's root*, ``exec`` fails with ``ENOENT`` ("No such file or
directory") although the program itself is right there. That is the most confusing error a
hand-made root filesystem can give, and this module lets lessons show where it comes from.

Only the parts of the format needed for that are read, for 32- and 64-bit files in either byte
order. The layout is from the System V ABI (``man 5 elf``)::

    ELF header          magic, class (32/64), byte order, type, machine, where the tables are
    program headers     segments the kernel/loader map: PT_LOAD, PT_INTERP, PT_DYNAMIC, ...
    ... code, data ...
    section headers     (for linkers and debuggers; not needed to run, not read here)
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from kit.errors import KitError

MAGIC = b"\x7fELF"

# e_ident[EI_CLASS]: the word size of the file (not necessarily of the machine reading it).
ELFCLASS32 = 1
ELFCLASS64 = 2
# e_ident[EI_DATA]: the byte order of every multi-byte field after e_ident.
ELFDATA2LSB = 1  # little endian (x86, most ARM)
ELFDATA2MSB = 2  # big endian (s390x, older MIPS/PowerPC)

# e_type: what kind of object this is. Position-independent executables (most programs on a
# modern distribution) are "shared objects" too: only PT_INTERP tells them apart from libraries.
ET_NAMES = {0: "none", 1: "relocatable", 2: "executable", 3: "shared object", 4: "core"}

# e_machine: the instruction set. A few common ones, for display.
MACHINE_NAMES = {
    3: "x86",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    62: "x86-64",
    183: "aarch64",
    243: "riscv",
}

# p_type: program header (segment) types this reader cares about.
PT_LOAD = 1  # a piece of the file mapped into memory at p_vaddr
PT_DYNAMIC = 2  # the dynamic section: what the loader must do (libraries, search paths)
PT_INTERP = 3  # the path of the program interpreter (the dynamic loader)

# d_tag: entries of the dynamic section.
DT_NULL = 0  # end of the table
DT_NEEDED = 1  # a library this object needs (an offset into the string table)
DT_STRTAB = 5  # the address of the dynamic string table
DT_STRSZ = 10  # its size
DT_SONAME = 14  # this library's own name
DT_RPATH = 15  # old-style library search path
DT_RUNPATH = 29  # library search path


@dataclass
class ElfInfo:
    """What :func:`inspect` found in one ELF file."""

    path: str
    bits: int
    endian: str
    type: str
    machine: str
    interpreter: str | None = None
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    runpath: str | None = None

    @property
    def static(self) -> bool:
        """Runs without a loader and without shared libraries."""
        return self.interpreter is None and not self.needed


def is_elf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a readable regular file that starts with the ELF magic ``\\x7fELF``."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def interpreter(path: str | os.PathLike[str] | BinaryIO) -> str | None:
    """The program interpreter (``PT_INTERP``) the kernel runs for this file, or None.

    None means the kernel runs the file directly: a static program, or a shared library.
    """
    return inspect(path).interpreter


def needed(path: str | os.PathLike[str] | BinaryIO) -> list[str]:
    """The libraries (``DT_NEEDED``) this file asks the loader for, e.g. ``["libc.so.6"]``.

    Only direct needs: each library may need more (ask the loader for the whole closure).
    """
    return inspect(path).needed


def is_static(path: str | os.PathLike[str] | BinaryIO) -> bool:
    """True for an ELF file that needs neither a loader nor shared libraries."""
    return inspect(path).static


def inspect(path: str | os.PathLike[str] | BinaryIO) -> ElfInfo:
    """Read the ELF header, the program headers and the dynamic section of one file.

    ``path`` may also be a binary file open for reading (e.g. one opened inside a container's
    root with openat2). Raises :class:`KitError` for a file that is not ELF or is truncated.
    """
    if isinstance(path, str | os.PathLike):
        name = os.fspath(path)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise KitError(
                f"cannot read {name}",
                errno=exc.errno,
                cause="the file must exist and be readable to inspect it",
                fix="check the path (inside a root filesystem, prefix it with the root)",
            ) from None
    else:
        name = getattr(path, "name", "<file>")
        data = path.read()
    return _parse(str(name), data)


def _parse(name: str, data: bytes) -> ElfInfo:
    if data[:4] != MAGIC:
        raise KitError(
            f"{name} is not an ELF file",
            cause="it does not start with the bytes \\x7fELF (it may be a script or data)",
            fix="for a script, look at its #! line to see which interpreter it needs",
        )
    # e_ident: 16 bytes. [4] class, [5] byte order, [6] version, [7] OS ABI, then padding.
    if len(data) < 16 or data[4] not in (ELFCLASS32, ELFCLASS64):
        raise _malformed(name, "unknown ELF class (neither 32- nor 64-bit)")
    if data[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise _malformed(name, "unknown byte order")
    bits = 64 if data[4] == ELFCLASS64 else 32
    order = "<" if data[5] == ELFDATA2LSB else ">"

    # The rest of the ELF header. Addresses and offsets are 4 bytes in ELF32, 8 in ELF64:
    # e_type, e_machine (2 bytes each), e_version (4), e_entry, e_phoff, e_shoff (word size),
    # e_flags (4), e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx (2 each).
    word = "Q" if bits == 64 else "I"
    header = struct.Struct(f"{order}HHI{word}{word}{word}IHHHHHH")
    try:
        fields = header.unpack_from(data, 16)
    except struct.error:
        raise _malformed(name, "the ELF header is truncated") from None

    e_type, e_machine, e_phoff, e_phentsize, e_phnum = (fields[i] for i in (0, 1, 4, 8, 9))

    info = ElfInfo(
        path=name,
        bits=bits,
        endian="little" if order == "<" else "big",
        type=ET_NAMES.get(e_type, str(e_type)),
        machine=MACHINE_NAMES.get(e_machine, str(e_machine)),
    )

    # Program headers: e_phnum entries of e_phentsize bytes at file offset e_phoff. The field
    # order differs: ELF64 moved p_flags up to keep the 8-byte fields aligned.
    #   ELF64: type flags offset vaddr paddr filesz memsz align
    #   ELF32: type offset vaddr paddr filesz memsz flags align
    ph = struct.Struct(f"{order}IIQQQQQQ" if bits == 64 else f"{order}IIIIIIII")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz) of each PT_LOAD
    dynamic: tuple[int, int] | None = None  # (offset, filesz) of PT_DYNAMIC
    for index in range(e_phnum):
        try:
            entry = ph.unpack_from(data, e_phoff + index * e_phentsize)
        except struct.error:
            raise _malformed(name, "the program headers are truncated") from None
        if bits == 64:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = entry
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = entry
        if p_type == PT_INTERP:
            # A NUL-terminated path stored in the file itself.
            raw = data[p_offset : p_offset + p_filesz]
            info.interpreter = raw.split(b"\0", 1)[0].decode(errors="surrogateescape")
        elif p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)

    if dynamic is not None:
        _read_dynamic(name, data, info, order, bits, dynamic, loads)
    return info


def _read_dynamic(
    name: str,
    data: bytes,
    info: ElfInfo,
    order: str,
    bits: int,
    dynamic: tuple[int, int],
    loads: list[tuple[int, int, int]],
) -> None:
    """Read DT_NEEDED and friends from the dynamic section: (d_tag, d_val) pairs."""
    entry = struct.Struct(f"{order}qQ" if bits == 64 else f"{order}iI")
    offset, size = dynamic
    tags: list[tuple[int, int]] = []
    for position in range(offset, offset + size - entry.size + 1, entry.size):
        try:
            tag, value = entry.unpack_from(data, position)
        except struct.error:
            raise _malformed(name, "the dynamic section is truncated") from None
        if tag == DT_NULL:
            break
        tags.append((tag, value))

    # Names are offsets into the dynamic string table. DT_STRTAB gives its *memory address*
    # (where the loader will have mapped it), so translate it back to a file offset through
    # the PT_LOAD segment that contains it.
    strtab_addr = next((value for tag, value in tags if tag == DT_STRTAB), None)
    if strtab_addr is None:
        return
    strtab = None
    for vaddr, file_offset, filesz in loads:
        if vaddr <= strtab_addr < vaddr + filesz:
            strtab = strtab_addr - vaddr + file_offset
            break
    if strtab is None:
        raise _malformed(name, "the string table lies outside every loaded segment")

    def string(at: int) -> str:
        start = strtab + at
        end = data.find(b"\0", start)
        if start >= len(data) or end < 0:
            raise _malformed(name, "a dynamic string points past the end of the file")
        return data[start:end].decode(errors="surrogateescape")

    for tag, value in tags:
        if tag == DT_NEEDED:
            info.needed.append(string(value))
        elif tag == DT_SONAME:
            info.soname = string(value)
        elif tag == DT_RUNPATH or (tag == DT_RPATH and info.runpath is None):
            info.runpath = string(value)


def _malformed(name: str, why: str) -> KitError:
    return KitError(
        f"{name} is a malformed ELF file",
        cause=why,
        fix="the file may be truncated or damaged; copy it again from its source",
    )
