"""The container's terminal (``kit run -it``): a pty made inside, driven from outside.

Like runc with ``--console-socket``, kit creates the pseudo-terminal *inside* the container,
from the container's own devpts instance, so that programs there see a real terminal of theirs
(``tty`` prints ``/dev/pts/0``). The master side is then handed to the caller over a unix
socket (SCM_RIGHTS passes an open file descriptor between processes), and the caller copies
bytes between its own terminal and the master.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import termios

from kit.linux.syscall import quote, traced

TIOCGPTPEER = 0x5441  # open the peer (slave) of a master without a path lookup
TIOCSPTLCK = 0x40045431  # unlock the slave (what unlockpt(3) does)
TIOCSCTTY = 0x540E  # make a terminal the session's controlling terminal
TIOCSWINSZ = 0x5414
TIOCGWINSZ = 0x5413


def open_pty(rows: int, cols: int) -> tuple[int, int]:
    """Create a pty from /dev/ptmx (inside the container); returns (master, slave)."""
    master = traced(
        "open",
        [quote("/dev/ptmx"), "O_RDWR|O_NOCTTY|O_CLOEXEC"],
        lambda: os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC),
    )
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    slave = traced(
        "ioctl",
        [str(master), "TIOCGPTPEER", "O_RDWR|O_NOCTTY"],
        lambda: fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY),
    )
    set_window_size(master, rows, cols)
    return master, slave


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def window_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of a terminal, or None if ``fd`` is not one."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def make_controlling_terminal(slave: int) -> None:
    """New session, ``slave`` as its controlling terminal, and as stdin/stdout/stderr.

    A shell only does job control (Ctrl-Z, fg, bg) when it has a controlling terminal and is
    a session leader's descendant in that session.
    """
    traced("setsid", [], os.setsid)
    traced("ioctl", [str(slave), "TIOCSCTTY", "0"], lambda: fcntl.ioctl(slave, TIOCSCTTY, 0))
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def send_fd(sock_fd: int, fd: int, label: str = "console") -> None:
    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        traced(
            "sendmsg",
            [f"{sock_fd}<unix>", f"SCM_RIGHTS [{fd}]"],
            lambda: socket.send_fds(sock, [label.encode()], [fd]),
            note="hand the terminal's master side to the caller",
        )


def receive_fd(sock: socket.socket) -> int | None:
    """Receive one file descriptor sent with :func:`send_fd`; None at end of stream."""
    _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    if not fds:
        return None
    return fds[0]


class RawTerminal:
    """Put the caller's terminal in raw mode for the duration of a ``with`` block.

    In raw mode every key (Ctrl-C and Ctrl-Z included) is passed to the container's terminal as
    a byte, where its own line discipline turns it into a signal for the container's processes.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list | None = None

    def __enter__(self) -> RawTerminal:
        if os.isatty(self.fd):
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            # A hung-up terminal has nothing left to restore.
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
