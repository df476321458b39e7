"""kit.elf against hand-built ELF files (32/64-bit, both byte orders) and the host's binaries.

``readelf`` (binutils) is the oracle for real binaries.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from kit import elf
from kit.errors import KitError

VADDR = 0x400000


def make_elf(bits: int, order: str, *, interp: str | None, needed: list[str]) -> bytes:
    """A minimal but well-formed ELF executable: header, PT_LOAD, PT_INTERP, PT_DYNAMIC."""
    word = "Q" if bits == 64 else "I"
    ehsize = 64 if bits == 64 else 52
    phentsize = 56 if bits == 64 else 32
    dyn_entry = struct.Struct(f"{order}qQ" if bits == 64 else f"{order}iI")

    strtab = b"\0"
    offsets = []
    for name in needed:
        offsets.append(len(strtab))
        strtab += name.encode() + b"\0"
    interp_bytes = interp.encode() + b"\0" if interp else b""

    headers = 1 + (interp is not None) + bool(needed)
    interp_off = ehsize + headers * phentsize
    strtab_off = interp_off + len(interp_bytes)
    dyn_off = strtab_off + len(strtab)
    dynamic = b"".join(dyn_entry.pack(1, off) for off in offsets)
    dynamic += dyn_entry.pack(5, VADDR + strtab_off) + dyn_entry.pack(10, len(strtab))
    dynamic += dyn_entry.pack(0, 0)
    total = dyn_off + (len(dynamic) if needed else 0)

    def phdr(p_type: int, offset: int, size: int) -> bytes:
        if bits == 64:
            return struct.pack(
                f"{order}IIQQQQQQ", p_type, 5, offset, VADDR + offset, 0, size, size, 8
            )
        return struct.pack(f"{order}IIIIIIII", p_type, offset, VADDR + offset, 0, size, size, 5, 4)

    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if order == "<" else 2, 1]) + bytes(9)
    header = ident + struct.pack(
        f"{order}HHI{word}{word}{word}IHHHHHH",
        2,  # ET_EXEC
        62 if bits == 64 else 3,
        1,
        VADDR,
        ehsize,
        0,
        0,
        ehsize,
        phentsize,
        headers,
        0,
        0,
        0,
    )
    phdrs = phdr(1, 0, total)
    if interp is not None:
        phdrs += phdr(3, interp_off, len(interp_bytes))
    if needed:
        phdrs += phdr(2, dyn_off, len(dynamic))
    body = header + phdrs + interp_bytes + strtab + (dynamic if needed else b"")
    assert len(body) == total
    return body


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("order", ["<", ">"])
def test_synthetic_dynamic_elf(tmp_path: Path, bits: int, order: str) -> None:
    path = tmp_path / "prog"
    path.write_bytes(
        make_elf(bits, order, interp="/lib/ld-test.so.1", needed=["libfoo.so.2", "libc.so.6"])
    )
    info = elf.inspect(path)
    assert info.bits == bits
    assert info.endian == ("little" if order == "<" else "big")
    assert elf.is_elf(path)
    assert elf.interpreter(path) == "/lib/ld-test.so.1"
    assert elf.needed(path) == ["libfoo.so.2", "libc.so.6"]
    assert not elf.is_static(path)


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("order", ["<", ">"])
def test_synthetic_static_elf(tmp_path: Path, bits: int, order: str) -> None:
    path = tmp_path / "static"
    path.write_bytes(make_elf(bits, order, interp=None, needed=[]))
    assert elf.interpreter(path) is None
    assert elf.needed(path) == []
    assert elf.is_static(path)


def test_reads_an_open_file(tmp_path: Path) -> None:
    data = make_elf(64, "<", interp="/lib64/ld.so", needed=["libz.so.1"])
    assert elf.interpreter(io.BytesIO(data)) == "/lib64/ld.so"


def _readelf(args: list[str], path: str) -> str:
    readelf = shutil.which("readelf")
    assert readelf, "binutils' readelf is the oracle for these tests"
    return subprocess.run([readelf, *args, path], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("program", ["ls", "bash", "ps", "mount"])
def test_host_programs_match_readelf(program: str) -> None:
    path = shutil.which(program, path="/usr/bin:/bin:/usr/sbin:/sbin")
    assert path
    interp = re.search(r"Requesting program interpreter: (\S+)\]", _readelf(["-l"], path))
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", _readelf(["-d"], path))
    assert interp is not None
    assert elf.interpreter(path) == interp.group(1)
    assert elf.needed(path) == libs
    assert "libc.so.6" in libs


def test_static_busybox_and_the_loader() -> None:
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is installed on this machine"
    assert elf.is_static(busybox)
    loader = elf.interpreter(shutil.which("ls") or "/bin/ls")
    assert loader
    # The loader itself is the one program that needs no loader.
    assert elf.interpreter(loader) is None
    assert elf.inspect(loader).soname is not None


def test_a_script_is_not_elf(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert not elf.is_elf(script)
    assert not elf.is_elf(tmp_path / "missing")
    with pytest.raises(KitError, match="not an ELF file") as caught:
        elf.interpreter(script)
    assert caught.value.fix and "#!" in caught.value.fix


def test_truncated_elf_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "cut"
    path.write_bytes(make_elf(64, "<", interp="/lib/ld.so", needed=["libc.so.6"])[:40])
    with pytest.raises(KitError, match="malformed ELF"):
        elf.inspect(path)


def test_missing_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="cannot read") as caught:
        elf.needed(tmp_path / "nope")
    assert caught.value.errno_name == "ENOENT"
