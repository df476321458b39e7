"""A small PNG reader for screenshot tests: the pixels of a non-interlaced 8-bit RGB or RGBA
PNG (what Chromium writes), with the standard's five row filters.

About forty lines instead of a dependency: the tests only need to find where given colours are.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def read_rgb(path: Path) -> tuple[int, int, list[bytes]]:
    """``(width, height, rows)``; each row is ``width * 3`` bytes of RGB."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + best) & 0xFF
        previous = line
        if channels == 4:
            rgb = bytearray()
            for x in range(width):
                rgb += line[x * 4 : x * 4 + 3]
            line = rgb
        rows.append(bytes(line))
    return width, height, rows


def rows_with(rows: list[bytes], colour: tuple[int, int, int], at_least: int) -> list[int]:
    """Row numbers holding ``colour`` in at least ``at_least`` pixels."""
    needle = bytes(colour)
    found = []
    for y, row in enumerate(rows):
        count = sum(1 for x in range(0, len(row), 3) if row[x : x + 3] == needle)
        if count >= at_least:
            found.append(y)
    return found
