"""The probe report: what a program running in a container is actually allowed, read from inside.

Settings in a spec are intentions; the report is what the kernel says a process in the
finished container has. A small shell script (:data:`SCRIPT`, builtins and ``cat`` only, so
it runs in a busybox root as well as a Debian one) is the container's program. Being a real
program exec'd in the container matters: capabilities are recomputed at execve, so the init's
own sets before execve are not what the program gets. It prints:

* /proc/self/status: the five capability sets, NoNewPrivs, the Seccomp mode, uid and gid;
* /proc/self/mountinfo: the mount options of /, /proc/sys and every other mount;
* for each masked-path candidate, what is there: a character device (/dev/null bound over a
  file), an empty directory (a tmpfs over a directory), real contents, or nothing.

Because it is only a program and its output, the same report can be made under any runtime:
:func:`run_kit` and :func:`run_runc` run it from one :class:`~kit.spec.Spec`, which is how kit
is checked against runc (the same options must give the same report).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kit import mounts
from kit.errors import KitError
from kit.linux.caps import render_mask
from kit.runtime.defaults import MASKED_PATHS
from kit.spec import Spec

#: Paths whose masking the report looks at: runc's default masked paths (kit masks the same).
MASK_CANDIDATES = MASKED_PATHS

#: Mount points whose options the report compares (when they exist).
WATCHED_MOUNTS = (
    "/",
    "/proc",
    "/proc/sys",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sysrq-trigger",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/tmp",
)

# Shell builtins only (plus cat), so any root filesystem with a POSIX shell can run it.
SCRIPT = """\
echo '== status'
cat /proc/self/status
echo '== mountinfo'
cat /proc/self/mountinfo
echo '== masked'
for p in {candidates}; do
  if [ -c "$p" ]; then echo "$p char-device"
  elif [ -d "$p" ]; then
    set -- "$p"/*
    if [ "$1" = "$p/*" ]; then echo "$p empty-dir"; else echo "$p has-entries"; fi
  elif [ -e "$p" ]; then echo "$p has-contents"
  else echo "$p absent"
  fi
done
echo '== end'
""".format(candidates=" ".join(MASK_CANDIDATES))

_CAP_FIELDS = {
    "CapInh": "inheritable",
    "CapPrm": "permitted",
    "CapEff": "effective",
    "CapBnd": "bounding",
    "CapAmb": "ambient",
}


@dataclass
class ProbeReport:
    """What the container's program has, as the kernel reports it."""

    #: set name -> capability names (effective, permitted, inheritable, bounding, ambient)
    capabilities: dict[str, list[str]] = field(default_factory=dict)
    no_new_privs: bool = False
    #: 0 off, 1 strict, 2 filter
    seccomp: int = 0
    seccomp_filters: int = 0
    uid: int = -1
    gid: int = -1
    #: mount point -> per-mount options (rw/ro, nosuid, ...), for the watched mount points
    mounts: dict[str, list[str]] = field(default_factory=dict)
    #: masked-path candidate -> char-device | empty-dir | has-entries | has-contents | absent
    masked: dict[str, str] = field(default_factory=dict)

    def comparable(self) -> dict[str, object]:
        """The parts two runtimes must agree on (see the module docstring)."""
        return {
            "capabilities": self.capabilities,
            "no_new_privs": self.no_new_privs,
            "seccomp": self.seccomp,
            "mounts": self.mounts,
            "masked": self.masked,
        }

    def lines(self) -> list[str]:
        """A plain-text rendering, one fact per line (for the CLI and the lessons)."""
        out = [f"uid {self.uid}, gid {self.gid}"]
        for name in ("effective", "permitted", "inheritable", "bounding", "ambient"):
            caps = self.capabilities.get(name, [])
            out.append(f"{name:<12} {', '.join(c[4:] for c in caps) or '(none)'}")
        out.append(f"no_new_privs {'on' if self.no_new_privs else 'off'}")
        modes = {0: "off", 1: "strict", 2: f"filter ({self.seccomp_filters})"}
        out.append(f"seccomp      {modes.get(self.seccomp, str(self.seccomp))}")
        for point, options in self.mounts.items():
            out.append(f"mount {point:<20} {','.join(options)}")
        for path, state in self.masked.items():
            out.append(f"masked {path:<20} {state}")
        return out


def _sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if "end" not in sections:
        raise KitError(
            "the probe script did not finish",
            cause="the container's program was killed or could not run cat",
            fix="run the probe in a root filesystem with /bin/sh and cat",
        )
    return sections


def parse(output: str, *, watched: tuple[str, ...] = WATCHED_MOUNTS) -> ProbeReport:
    """Turn the script's output into a report."""
    sections = _sections(output)
    report = ProbeReport()
    for line in sections["status"]:
        key, _, value = line.partition(":")
        value = value.strip()
        if key in _CAP_FIELDS:
            mask = int(value, 16)
            names = render_mask(mask).split("|") if mask else []
            report.capabilities[_CAP_FIELDS[key]] = names
        elif key == "NoNewPrivs":
            report.no_new_privs = value == "1"
        elif key == "Seccomp":
            report.seccomp = int(value)
        elif key == "Seccomp_filters":
            report.seccomp_filters = int(value)
        elif key == "Uid":
            report.uid = int(value.split()[1])  # the effective uid
        elif key == "Gid":
            report.gid = int(value.split()[1])
    table = mounts.parse("\n".join(sections["mountinfo"]))
    for point in watched:
        found = mounts.find(table, point)
        if found is not None:
            report.mounts[point] = list(found.options)
    for line in sections["masked"]:
        path, _, state = line.partition(" ")
        report.masked[path] = state
    return report


def probe_spec(spec: Spec) -> Spec:
    """A copy of ``spec`` whose program is the probe script (no terminal)."""
    probe = copy.deepcopy(spec)
    probe.process.args = ["/bin/sh", "-c", SCRIPT]
    probe.process.terminal = False
    probe.kit.probe = None
    return probe


def run_kit(spec: Spec) -> ProbeReport:
    """Make the report in a kit container built from ``spec``."""
    from kit.runtime.launcher import ContainerProcess

    with ContainerProcess(probe_spec(spec), capture=True, trace=False) as container:
        status = container.wait()
    if status.error is not None or status.code != 0:
        raise KitError(
            f"the probe container failed (exit {status.code}): {status.error or ''}"
            f"{status.stderr.decode(errors='replace')[-300:]}",
            fix="check that the root filesystem has /bin/sh and cat",
        )
    return parse(status.stdout.decode())


def run_runc(spec: Spec, *, runc: str = "runc", cgroups_path: str | None = None) -> ProbeReport:
    """Make the report in a runc container built from the same ``spec`` (OCI config.json).

    The bundle is a temporary directory holding config.json; the root filesystem stays where
    the spec says (runc accepts an absolute root.path). ``runc run`` creates, starts, waits
    for and deletes the container.
    """
    probe = probe_spec(spec)
    probe.root.path = os.path.abspath(probe.root.path)
    if cgroups_path is not None:
        probe.linux.cgroups_path = cgroups_path
    with tempfile.TemporaryDirectory(prefix="kit-runc-") as scratch:
        bundle = Path(scratch) / "bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(probe.to_json(indent=2))
        name = f"kit-probe-{os.getpid()}-{os.urandom(4).hex()}"
        result = subprocess.run(
            [runc, "--root", str(Path(scratch) / "state"), "run", "--bundle", str(bundle), name],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if result.returncode != 0:
        raise KitError(
            f"runc could not run the probe (exit {result.returncode}): {result.stderr.strip()}",
            fix="check `runc --version` and that the spec is valid for runc",
        )
    return parse(result.stdout)


def differences(ours: ProbeReport, theirs: ProbeReport) -> list[str]:
    """Where two reports disagree, one line each (empty when they match)."""
    a, b = ours.comparable(), theirs.comparable()
    out = []
    for key in a:
        left, right = a[key], b[key]
        if isinstance(left, dict) and isinstance(right, dict):
            for item in sorted(set(left) | set(right)):
                if left.get(item) != right.get(item):
                    out.append(f"{key}[{item}]: kit {left.get(item)} / other {right.get(item)}")
        elif left != right:
            out.append(f"{key}: kit {left} / other {right}")
    return out


def to_json(report: ProbeReport) -> str:
    return json.dumps(asdict(report), indent=2)
