"""Building root filesystems: the directory tree a container sees as ``/``.

A container's root filesystem is an ordinary directory. What makes it *work* is that every
program in it can be exec'd from inside: a dynamically linked program needs its loader (the
ELF interpreter, e.g. ``/lib64/ld-linux-x86-64.so.2``) and every shared library the loader
will look for, at the same paths, *inside the root*. Miss the loader and ``exec`` fails with
ENOENT although the program is right there (see :mod:`kit.elf`).

Three ways to make one:

``host``
    Copy a chosen set of the host's programs, with the full closure of their libraries (asked
    from the loader itself: ``LOADER --list PROGRAM``, which is what ``ldd`` does), into a
    small FHS tree with the usual files in /etc. Works on any Linux, downloads nothing.
``busybox``
    One static binary that is ~300 programs: copy it, and make a symlink per program
    ("applet"). Static means no loader and no libraries: nothing else is needed.
``tar``
    Unpack a root filesystem archive (e.g. ``docker export``) safely (:mod:`kit.tarsafe`).

Every build is atomic: it happens in a temporary directory beside the destination, which is
renamed into place only when complete. A failed build leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import io
import os
import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kit import __version__, elf, paths, tarsafe
from kit.errors import KitError
from kit.rootpath import open_in_root
from kit.tarsafe import SafeRoot, split
from kit.trace import tracer

SOURCES = ("host", "busybox", "tar")

#: Programs copied from the host by default, if the host has them. Enough for the lessons:
#: a shell, file tools, process and mount tools, and identity/namespace inspection.
DEFAULT_PROGRAMS = (
    # shells: Debian's /bin/sh is dash; bash for comfortable interactive use
    "sh", "bash",
    # files and text
    "ls", "cat", "cp", "mv", "ln", "rm", "mkdir", "rmdir", "touch", "chmod", "chown", "stat",
    "readlink", "realpath", "find", "head", "tail", "wc", "sort", "uniq", "cut", "tr", "sed",
    "grep", "tee", "xargs", "dirname", "basename", "du", "df", "mknod", "awk",
    # shell utilities that also exist as programs
    "echo", "printf", "test", "[", "true", "false", "pwd", "env", "sleep", "date", "seq",
    # processes, system, identity
    "ps", "kill", "hostname", "uname", "id", "whoami", "nproc", "free", "tty", "stty",
    # mounts and namespaces
    "mount", "umount", "mountpoint", "findmnt", "chroot", "unshare", "nsenter", "setpriv",
)  # fmt: skip

#: The shell every root filesystem must have: it is the default command of a container.
SHELL = "sh"

#: Where host programs are looked up, distribution directories first.
HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"

#: PATH inside the container (also written to /etc/profile).
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Terminal descriptions copied when present, so an interactive shell and `clear` work.
TERMINALS = ("dumb", "linux", "vt100", "vt220", "xterm", "xterm-256color", "screen", "tmux",
             "tmux-256color", "screen-256color")  # fmt: skip
TERMINFO_DIRS = ("/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo")

#: Top-level directories that a usr-merged distribution turns into symlinks into /usr.
MERGEABLE = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

#: The directory skeleton: path -> mode. /tmp is world-writable with the sticky bit (1777):
#: anyone may create files, only the owner may delete them.
SKELETON = {
    "bin": 0o755, "sbin": 0o755, "lib": 0o755, "lib64": 0o755,
    "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "usr/lib": 0o755, "usr/lib64": 0o755,
    "usr/local": 0o755, "usr/local/bin": 0o755, "usr/share": 0o755,
    "etc": 0o755, "root": 0o700, "home": 0o755, "var": 0o755, "var/tmp": 0o1777,
    "var/log": 0o755, "tmp": 0o1777, "mnt": 0o755, "opt": 0o755, "srv": 0o755,
    # Mount points: the runtime mounts proc, devtmpfs/tmpfs, sysfs and a tmpfs on these.
    "proc": 0o555, "dev": 0o755, "sys": 0o555, "run": 0o755,
}  # fmt: skip

LEARNER_UID = 1000

#: Where busybox-static puts busybox (then PATH is searched).
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


@dataclass
class CopiedFile:
    """One entry put into the root filesystem."""

    path: str  # inside the root, e.g. "/usr/bin/ls"
    kind: str  # "file" or "symlink"
    size: int = 0
    source: str | None = None  # the host file it was copied from
    target: str | None = None  # a symlink's target


@dataclass
class ProgramReport:
    """A program in the root filesystem and what it needs to run."""

    name: str
    path: str  # where PATH finds it, e.g. "/usr/bin/sh"
    real_path: str  # after following symlinks, e.g. "/usr/bin/dash"
    kind: str  # "dynamic", "static", "script" or "other"
    interpreter: str | None = None  # the ELF loader, or a script's #! interpreter
    libraries: list[str] = field(default_factory=list)  # the loader's answer, in its order
    size: int = 0  # bytes it added: itself, and the libraries no earlier program brought
    links: list[str] = field(default_factory=list)  # busybox: its applet links


@dataclass
class RootfsReport:
    """What a build made, for the CLI's summary and for lessons to display."""

    dest: Path
    source: str
    programs: list[ProgramReport] = field(default_factory=list)
    files: list[CopiedFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # default programs this host lacks
    warnings: list[str] = field(default_factory=list)
    total_bytes: int = 0
    extract: tarsafe.ExtractReport | None = None  # tar builds

    @property
    def closure(self) -> dict[str, list[str]]:
        """Program name -> the libraries (and loader) it needs, as the loader listed them."""
        return {p.name: list(p.libraries) for p in self.programs}

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        data = asdict(self)
        data["dest"] = str(self.dest)
        return data


# --- the public entry points ---------------------------------------------------------------


def build_rootfs(
    dest: str | os.PathLike[str],
    source: str = "host",
    tar_file: str | os.PathLike[str] | None = None,
    programs: list[str] | None = None,
    *,
    extra_programs: list[str] | None = None,
    replace: bool = False,
    allow_devices: bool = False,
) -> RootfsReport:
    """Build a root filesystem at ``dest`` from ``source`` ("host", "busybox" or "tar").

    Host builds copy :data:`DEFAULT_PROGRAMS` (those this host has), or exactly ``programs``
    when given, plus ``extra_programs``; the shell is always included. Programs asked for by
    name must exist on the host. ``tar_file`` (tar only) is a plain or gzip-compressed archive
    of a root filesystem; device nodes in it are refused unless ``allow_devices``. An existing
    non-empty ``dest`` is replaced only with ``replace`` (``--force``).
    """
    if source not in SOURCES:
        raise KitError(
            f"unknown root filesystem source {source!r}",
            fix=f"use one of: {', '.join(SOURCES)}",
        )
    if source != "host" and (programs or extra_programs):
        raise KitError(
            "--program only applies to --from host",
            cause=f"a {source} root filesystem brings its own programs",
            fix="leave out --program, or use --from host",
        )
    if source == "tar" and tar_file is None:
        raise KitError(
            "--from tar needs the archive to unpack",
            fix="give the file: `kit rootfs build DEST --from tar FILE.tar`",
        )
    if source != "tar" and tar_file is not None:
        raise KitError(
            f"a tar file was given, but the source is {source}",
            fix="add --from tar to unpack the archive",
        )
    final = Path(os.path.abspath(dest))
    report = RootfsReport(dest=final, source=source)
    # Check what is needed before anything is created.
    busybox = find_busybox() if source == "busybox" else None
    if tar_file is not None and not os.path.isfile(tar_file):
        raise KitError(
            f"archive {tar_file} does not exist",
            fix="check the path of the tar file",
        )
    tracer().info(f"building a {source} root filesystem at {final}", dest=str(final))
    with tarsafe.staging(final, replace=replace) as temp:
        if source == "host":
            _build_host(temp, report, programs, extra_programs or [])
        elif source == "busybox":
            assert busybox is not None
            _build_busybox(temp, report, busybox)
        else:
            assert tar_file is not None
            _build_tar(temp, report, tar_file, allow_devices=allow_devices)
        report.total_bytes = tree_size(temp)[0]
    tracer().info(f"root filesystem ready: {final} ({report.total_bytes} bytes)", dest=str(final))
    return report


def default_rootfs() -> Path:
    """The tutorial's root filesystem (:func:`kit.paths.default_rootfs`), built if missing.

    Built from the host's programs, so nothing is downloaded. A file lock makes two kit
    processes starting at once build it only once.
    """
    import fcntl

    path = paths.default_rootfs()
    if _is_built(path):
        return path
    paths.ensure(path.parent)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_built(path):
            build_rootfs(path, "host", replace=True)
    return path


def _is_built(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and any(path.iterdir())


def find_busybox() -> str:
    """The host's static busybox, or a KitError saying how to install it."""
    candidates = [*BUSYBOX_PATHS, shutil.which("busybox")]
    found = next((c for c in candidates if c and os.path.isfile(c)), None)
    if found is None:
        raise KitError(
            "busybox is not installed",
            cause="a busybox root filesystem is a copy of the host's static busybox",
            fix="sudo apt-get install busybox-static",
        )
    if not elf.is_elf(found) or not elf.is_static(found):
        raise KitError(
            f"{found} is not statically linked",
            cause="a dynamic busybox needs the host's loader and libc inside the root; "
            "Debian's `busybox` package is dynamic, `busybox-static` is not",
            fix="sudo apt-get install busybox-static",
        )
    return found


def runnable_problems(root: str | os.PathLike[str], program: str = "/bin/sh") -> list[str]:
    """Why ``program`` could not be exec'd inside ``root`` (empty if it looks runnable).

    The path is resolved inside the root as the container will see it (symlinks included,
    never leaving the root), then its ELF interpreter or ``#!`` line is checked the same way.
    """
    with _RootReader(root) as reader:
        found = reader.read(program)
        if found is None:
            return [f"no {program} in the root filesystem: a container cannot start a shell"]
        st, data = found
        if data is None:
            return [f"{program} is not a regular file"]
        if not st.st_mode & 0o111:
            return [f"{program} is not executable (chmod +x)"]
        if data.startswith(elf.MAGIC):
            try:
                needs = elf.inspect(io.BytesIO(data)).interpreter
            except KitError as error:
                return [f"{program} is a damaged ELF file ({error.cause}): exec would fail"]
            kind = "its ELF interpreter (the loader)"
        elif data.startswith(b"#!"):
            words = data[2:].split(b"\n")[0].split()
            needs = words[0].decode(errors="replace") if words else None
            kind = "its #! interpreter"
        else:
            needs, kind = None, ""
        if needs and reader.stat(needs) is None:
            return [
                f"{program} needs {kind} {needs}, which is missing in the root filesystem: "
                "exec would fail with ENOENT"
            ]
    return []


class _RootReader:
    """Reads files inside a root as a process chrooted there would see them.

    openat2(RESOLVE_IN_ROOT) resolves symlinks as if the root were ``/``, so an absolute
    link such as ``/bin/sh -> /bin/busybox`` is followed inside the root, never to the host.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self) -> _RootReader:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def _open(self, path: str) -> int | None:
        """An O_PATH fd of ``path`` inside the root, or None if the lookup fails (any errno)."""
        try:
            return open_in_root(self.fd, path, os.O_PATH)
        except KitError as error:
            if error.errno is not None:
                return None
            raise

    def stat(self, path: str) -> os.stat_result | None:
        """stat() inside the root (following links inside it), or None if missing."""
        fd = self._open(path)
        if fd is None:
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def read(self, path: str, limit: int = 64 << 20) -> tuple[os.stat_result, bytes | None] | None:
        """(stat, content) of a file inside the root; content None if not a regular file."""
        fd = self._open(path)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return st, None  # never open a fifo or a device: that could block or act
            # Reopen the very inode the O_PATH fd names, now for reading.
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                return st, f.read(limit)
        finally:
            os.close(fd)


@dataclass
class BuiltRootfs:
    """One root filesystem found under kit's rootfs directory."""

    name: str
    path: str
    source: str  # host, busybox, or "-" when it has no kit marker (e.g. unpacked from a tar)
    bytes: int
    entries: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def list_rootfs(directory: Path | None = None) -> list[BuiltRootfs]:
    """The root filesystems under kit's rootfs directory (default: kit.paths.rootfs_dir())."""
    base = directory or paths.rootfs_dir()
    if not base.is_dir():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue  # dot entries are builds in progress and locks
        size, count = tree_size(entry)
        source = _read_marker(entry).get("KIT_ROOTFS_SOURCE", "-")
        found.append(BuiltRootfs(entry.name, str(entry), source, size, count))
    return found


def tree_size(root: Path) -> tuple[int, int]:
    """Bytes in regular files (hard links counted once) and number of entries, under root."""
    seen: set[tuple[int, int]] = set()
    size = count = 0
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow symlinks
        for name in dirnames + filenames:
            count += 1
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                size += st.st_size
    return size, count


def _read_marker(root: Path) -> dict[str, str]:
    """The KEY=value lines of ROOT/etc/os-release, read without leaving the root."""
    with _RootReader(root) as reader:
        found = reader.read("/etc/os-release", limit=8192)
    if found is None or found[1] is None:
        return {}
    text = found[1].decode(errors="replace")
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


# --- host -----------------------------------------------------------------------------------


class _HostCopier:
    """Copies host files into a root, mirroring every symlink on the way.

    ``/usr/bin/sh`` on Debian is a symlink to ``dash``; ``/lib64`` is a symlink to
    ``usr/lib64``. Copying only the final file would lose the names programs and the loader
    use, so each symlink met while resolving a host path is recreated as the same symlink in
    the root. Then the root resolves every such path exactly as the host does.
    """

    def __init__(self, root: SafeRoot, report: RootfsReport) -> None:
        self.root = root
        self.report = report
        self.copied: dict[str, int] = {}  # physical host path -> size

    def replicate(self, host_path: str) -> str:
        """Copy ``host_path`` (and the symlinks leading to it); return its physical path."""
        pending = [p for p in host_path.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = [*resolved, name]
            host = "/" + "/".join(candidate)
            try:
                st = os.lstat(host)
            except OSError as exc:
                raise KitError(
                    f"cannot copy {host_path} from the host",
                    errno=exc.errno,
                    cause=f"{host} is missing or unreadable",
                    fix="check that the program and its libraries are installed",
                ) from None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:  # the kernel's own limit (MAXSYMLINKS)
                    raise KitError(
                        f"too many symlinks resolving {host_path}",
                        errno=errno.ELOOP,
                        cause="its symlinks point at each other in a loop",
                        fix="repair the loop on the host, or leave this program out of the rootfs",
                    )
                target = os.readlink(host)
                self._symlink(tuple(candidate), target)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            elif stat.S_ISDIR(st.st_mode):
                resolved = candidate
                if not self.root.lstat(tuple(candidate)):
                    self.root.makedirs(tuple(candidate))
            else:
                if pending:
                    raise KitError(
                        f"cannot copy {host_path}",
                        cause=f"{host} is not a directory",
                        errno=errno.ENOTDIR,
                    )
                resolved = candidate
                self._file(host, st)
        return "/" + "/".join(resolved)

    def _symlink(self, parts: tuple[str, ...], target: str) -> None:
        existing = self.root.lstat(parts)
        path = "/" + "/".join(parts)
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode) and self._readlink(parts) == target:
                return
            raise KitError(
                f"cannot mirror the host's symlink {path} -> {target}",
                cause=f"the root filesystem already has something else at {path}",
                fix="report this layout to kit's authors; build with fewer --program options",
            )
        self.root.symlink(target, parts)
        self.report.files.append(CopiedFile(path, "symlink", source=path, target=target))

    def _readlink(self, parts: tuple[str, ...]) -> str:
        with self.root.parent(parts, create=False) as dir_fd:
            return os.readlink(parts[-1], dir_fd=dir_fd)

    def _file(self, host: str, st: os.stat_result) -> None:
        if host in self.copied:
            return
        with open(host, "rb") as source:
            # Keep rwx bits, drop setuid/setgid: the container runs as root and needs no
            # setuid, and a setuid copy outside the package manager would never get fixes.
            size = self.root.write_file(host, source, st.st_mode & 0o777, mtime_ns=st.st_mtime_ns)
        self.copied[host] = size
        self.report.files.append(CopiedFile(host, "file", size=size, source=host))

    def program(self, name: str) -> ProgramReport:
        """Copy one program and everything it needs to run."""
        host_path = _find_host_program(name)
        if host_path is None:
            raise KitError(
                f"program {name} not found on the host",
                cause=f"no {name} in {HOST_PATH}",
                fix=f"install {name} on the host, give its full path, or leave it out",
            )
        before = set(self.copied)
        real = self.replicate(host_path)
        program = ProgramReport(name=name, path=host_path, real_path=real, kind="other")
        self._closure(program, real)
        program.size = sum(size for path, size in self.copied.items() if path not in before)
        return program

    def _closure(self, program: ProgramReport, real: str, depth: int = 0) -> None:
        if elf.is_elf(real):
            info = elf.inspect(real)
            program.interpreter = info.interpreter
            if info.interpreter is None:
                program.kind = "static" if info.static else "other"
                return
            program.kind = "dynamic"
            self.replicate(info.interpreter)
            program.libraries = _ask_loader(info.interpreter, real)
            for library in program.libraries:
                self.replicate(library)
            return
        with open(real, "rb") as f:
            first = f.readline(256)
        if first.startswith(b"#!") and depth < 4:
            words = first[2:].strip().split()
            if words:
                program.kind = "script"
                interpreter = words[0].decode(errors="surrogateescape")
                program.interpreter = interpreter
                inner = ProgramReport(interpreter, interpreter, "", "other")
                self._closure(inner, self.replicate(interpreter), depth + 1)
                program.libraries = [interpreter, *inner.libraries]


def _find_host_program(name: str) -> str | None:
    if "/" in name:
        return os.path.abspath(name) if os.path.lexists(name) else None
    return shutil.which(name, path=HOST_PATH)


def _ask_loader(loader: str, program: str) -> list[str]:
    """The libraries ``program`` loads, in order, as the loader finds them (like ``ldd``).

    ``LOADER --list PROGRAM`` loads the program's libraries without running it and prints
    lines such as ``libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f...)``.
    """
    try:
        result = subprocess.run(
            [loader, "--list", program],
            capture_output=True,
            text=True,
            env={"LC_ALL": "C"},  # no LD_LIBRARY_PATH/LD_PRELOAD from the caller
            timeout=30,
            check=False,
        )
    except OSError as exc:
        raise KitError(
            f"cannot run the loader {loader}",
            errno=exc.errno,
            fix="check that the host's libc is intact",
        ) from None
    libraries: list[str] = []
    problems: list[str] = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            soname, _, where = (part.strip() for part in line.partition("=>"))
            if where.startswith("not found"):
                problems.append(soname)
                continue
            path = where.split(" (")[0].strip()
        else:
            path = line.split(" (")[0].strip()  # the loader itself, or the vDSO (no path)
        if path.startswith("/") and path not in libraries:
            libraries.append(path)
    if problems or result.returncode != 0:
        raise KitError(
            f"the loader cannot resolve the libraries of {program}",
            cause=f"missing: {', '.join(problems)}"
            if problems
            else (result.stderr.strip() or f"{loader} --list exited {result.returncode}"),
            fix=f"check `{loader} --list {program}` on the host, or leave the program out",
        )
    return libraries


def _build_host(
    temp: Path, report: RootfsReport, programs: list[str] | None, extra: list[str]
) -> None:
    asked = [*(programs or []), *extra]  # named by the caller: must exist
    wanted = [SHELL, *(DEFAULT_PROGRAMS if programs is None else programs), *extra]
    with SafeRoot(temp) as root:
        _skeleton(root, mirror_host=True)
        copier = _HostCopier(root, report)
        for name in dict.fromkeys(wanted):
            if name not in asked and _find_host_program(name) is None:
                report.missing.append(name)  # a default this host lacks: skip it
                continue
            tracer().info(f"copying {name} and its libraries", program=name)
            report.programs.append(copier.program(name))
        if _find_host_program(SHELL) is None:
            _shell_from_bash(root, copier, report)
        _copy_terminfo(copier)
        _etc_files(root, report, source="host")


def _shell_from_bash(root: SafeRoot, copier: _HostCopier, report: RootfsReport) -> None:
    """A host without /bin/sh: use bash as sh."""
    if _find_host_program("bash") is None:
        raise KitError(
            "the host has neither sh nor bash",
            cause="every root filesystem needs /bin/sh, the default command of a container",
            fix="install dash or bash on the host (`sudo apt-get install dash`), or build "
            "with --from busybox",
        )
    bash = copier.program("bash")
    report.programs.append(bash)
    root.symlink(os.path.basename(bash.real_path), bash.real_path.rsplit("/", 1)[0] + "/sh")


def _copy_terminfo(copier: _HostCopier) -> None:
    for term in TERMINALS:
        for base in TERMINFO_DIRS:
            entry = f"{base}/{term[0]}/{term}"
            if os.path.isfile(entry):
                copier.replicate(entry)
                break


def _skeleton(root: SafeRoot, *, mirror_host: bool) -> None:
    """The FHS directories. With ``mirror_host``, /bin, /lib, ... are symlinks where the host's
    are (a usr-merged host), so that every host path names the same file inside the root."""
    for name in MERGEABLE:
        if not mirror_host or not os.path.islink(f"/{name}"):
            continue
        target = os.readlink(f"/{name}")
        root.symlink(target, name)
        if not target.startswith("/"):
            root.makedirs(target)  # e.g. usr/lib64, so the link is never dangling
    for path, mode in SKELETON.items():
        existing = root.lstat(path)
        if existing is not None and stat.S_ISLNK(existing.st_mode):
            continue  # a usr-merge link made above
        root.makedirs(path)
        root.chmod(path, mode)  # explicit: mkdir's mode passes through the umask
    root.makedirs("home/learner", 0o755)
    root.chmod("home/learner", 0o700)
    if os.geteuid() == 0:
        root.chown("home/learner", LEARNER_UID, LEARNER_UID)


def _etc_files(root: SafeRoot, report: RootfsReport, *, source: str) -> None:
    """The files in /etc that programs expect: users, groups, names, resolver, os-release."""
    built = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    files = {
        # name:password(x = in shadow):uid:gid:comment:home:shell
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"learner:x:{LEARNER_UID}:{LEARNER_UID}:kit learner:/home/learner:/bin/sh\n",
        "etc/group": f"root:x:0:\nnogroup:x:65534:\nlearner:x:{LEARNER_UID}:\n",
        "etc/hostname": "kit\n",
        "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "127.0.1.1\tkit\n",
        "etc/resolv.conf": _resolv_conf(),
        # Where the C library looks up users, groups and host names: the files above.
        "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\n"
        "hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
        "etc/profile": f"# written by kit\nexport PATH={CONTAINER_PATH}\n",
        "etc/os-release": 'NAME="kit"\nID=kit\n'
        f'PRETTY_NAME="kit root filesystem ({source})"\n'
        f"VERSION_ID={__version__}\n"
        f"KIT_ROOTFS_SOURCE={source}\nKIT_BUILT={built}\n"
        "# Built by kit (`kit rootfs build`), for learning how containers get their files.\n",
    }
    # /etc/shadow holds password hashes: only root may read it. "*" means "no password".
    shadow = "".join(f"{user}:*:19000:0:99999:7:::\n" for user in ("root", "nobody", "learner"))
    for path, text, mode in [
        *((path, text, 0o644) for path, text in files.items()),
        ("etc/shadow", shadow, 0o640),
    ]:
        size = root.write_file(path, text.encode(), mode)
        report.files.append(CopiedFile("/" + path, "file", size=size))


def _resolv_conf() -> str:
    """The host's name servers, unless they are loopback addresses.

    127.0.0.53 (systemd-resolved) answers on the *host's* loopback, which a container with
    its own network namespace cannot reach.
    """
    lines = ["# written by kit at build time; a runtime may bind-mount its own over it"]
    with contextlib.suppress(OSError), open("/etc/resolv.conf") as f:
        for line in f:
            words = line.split()
            loopback = len(words) >= 2 and words[1].startswith(("127.", "::1"))
            if len(words) >= 2 and words[0] == "nameserver" and not loopback:
                lines.append(f"nameserver {words[1]}")
    return "\n".join(lines) + "\n"


# --- busybox --------------------------------------------------------------------------------

#: Directories busybox applets may be linked into.
APPLET_DIRS = (("bin",), ("sbin",), ("usr", "bin"), ("usr", "sbin"))


def _build_busybox(temp: Path, report: RootfsReport, busybox: str) -> None:
    listing = subprocess.run(
        [busybox, "--list-full"], capture_output=True, text=True, check=False, timeout=30
    )
    if listing.returncode != 0 or not listing.stdout.strip():
        raise KitError(
            f"{busybox} --list-full printed no applets",
            cause=listing.stderr.strip() or "this busybox may be too old for --list-full",
            fix="sudo apt-get install busybox-static",
        )
    with SafeRoot(temp) as root:
        _skeleton(root, mirror_host=False)  # real directories: applets live in all four
        with open(busybox, "rb") as source:
            size = root.write_file("bin/busybox", source, 0o755)
        report.files.append(CopiedFile("/bin/busybox", "file", size=size, source=busybox))
        program = ProgramReport("busybox", "/bin/busybox", "/bin/busybox", "static", size=size)
        for line in listing.stdout.split():
            parts = split(line)
            if len(parts) < 2 or parts == ("bin", "busybox") or parts[:-1] not in APPLET_DIRS:
                continue
            if root.lstat(parts) is not None:
                continue
            # An absolute link, as Alpine does: `ls -l /bin/ls` shows `/bin/ls -> /bin/busybox`.
            # busybox looks at the name it was started as (argv[0]) to pick the applet.
            root.symlink("/bin/busybox", parts)
            program.links.append("/" + "/".join(parts))
            report.files.append(CopiedFile("/" + "/".join(parts), "symlink", target="/bin/busybox"))
        report.programs.append(program)
        _etc_files(root, report, source="busybox")


# --- tar ------------------------------------------------------------------------------------


def _build_tar(
    temp: Path, report: RootfsReport, tar_file: str | os.PathLike[str], *, allow_devices: bool
) -> None:
    tracer().info(f"unpacking {tar_file}", archive=str(tar_file))
    report.extract = tarsafe.extract(tar_file, temp, allow_devices=allow_devices)
    report.warnings.extend(runnable_problems(temp, "/bin/sh"))
    if not report.warnings:
        sh = _describe_in_root(temp, "/bin/sh")
        if sh is not None:
            report.programs.append(sh)


def _describe_in_root(root: Path, program: str) -> ProgramReport | None:
    """What ``program`` inside ``root`` is (static or dynamic, which loader, which libs)."""
    with _RootReader(root) as reader:
        found = reader.read(program)
    if found is None or found[1] is None:
        return None
    st, data = found
    name = os.path.basename(program)
    if not data.startswith(elf.MAGIC):
        return ProgramReport(name, program, program, "script", size=st.st_size)
    try:
        info = elf.inspect(io.BytesIO(data))
    except KitError:
        return ProgramReport(name, program, program, "other", size=st.st_size)
    return ProgramReport(
        name,
        program,
        program,
        "static" if info.static else "dynamic",
        interpreter=info.interpreter,
        libraries=list(info.needed),
        size=st.st_size,
    )
