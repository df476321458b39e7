"""Bringing up the loopback interface in a new network namespace, without `ip`.

A fresh network namespace has only ``lo``, and it is down. Setting IFF_UP through the
SIOCSIFFLAGS ioctl on any socket is exactly what ``ip link set lo up`` does.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from kit.linux.syscall import traced

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_up(interface: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", interface.encode(), 0)
        current = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
        flags = struct.unpack("16sH14x", current)[1]
        new_request = struct.pack("16sH14x", interface.encode(), flags | IFF_UP)
        traced(
            "ioctl",
            [
                f"{sock.fileno()}<socket>",
                "SIOCSIFFLAGS",
                f'{{ifr_name="{interface}", ifr_flags=IFF_UP|...}}',
            ],
            lambda: fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, new_request),
            note=f"ip link set {interface} up",
        )
