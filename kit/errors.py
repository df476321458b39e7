"""The one error type kit raises on purpose.

Every failure a user can cause or meet says three things: what happened (with the errno when
the kernel refused something), why it most likely happened, and what to do about it. The CLI
prints ``str(error)`` on one line and exits non-zero; lessons show the same text.
"""

from __future__ import annotations

import errno as errno_module
import os


class KitError(Exception):
    """A failure explained: what, the errno if any, the likely cause, and the fix."""

    def __init__(
        self,
        what: str,
        *,
        errno: int | None = None,
        cause: str | None = None,
        fix: str | None = None,
        exit_code: int = 1,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.errno = errno
        self.cause = cause
        self.fix = fix
        self.exit_code = exit_code

    @property
    def errno_name(self) -> str | None:
        """The symbolic errno, e.g. ``EINVAL``."""
        if self.errno is None:
            return None
        return errno_module.errorcode.get(self.errno, str(self.errno))

    def __str__(self) -> str:
        text = self.what
        if self.errno is not None:
            text += f": {self.errno_name} ({os.strerror(self.errno)})"
        if self.cause:
            text += f" — {self.cause}"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, used to carry the error across the init's event pipe."""
        return {
            "what": self.what,
            "errno": self.errno,
            "cause": self.cause,
            "fix": self.fix,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> KitError:
        """Rebuild an error sent by another process (see :meth:`to_dict`)."""
        return cls(
            str(data.get("what", "unknown error")),
            errno=data.get("errno"),  # type: ignore[arg-type]
            cause=data.get("cause"),  # type: ignore[arg-type]
            fix=data.get("fix"),  # type: ignore[arg-type]
            exit_code=int(data.get("exit_code", 1)),  # type: ignore[arg-type]
        )
