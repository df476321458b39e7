"""``kit doctor``: can this machine run containers, and which lessons will work here?

Each check reads real kernel and system state (``/proc``, ``/sys``, the mount table) or makes a
real, harmless attempt (create a user namespace, mount an overlay) and reports a :class:`Check`:
``ok``, ``warn`` (something optional is missing; some lessons will say so) or ``fail`` (kit
cannot run a container here). Every non-ok check carries the exact command that fixes it, for
this distribution.

The package, one concern per module:

* :mod:`~kit.doctor.check` — the :class:`Check` result;
* :mod:`~kit.doctor.readers` — small readers of /proc, /sys, the kernel config, PATH;
* :mod:`~kit.doctor.parsing` — pure parsing (os-release, cgroup layouts, propagation, hints);
* :mod:`~kit.doctor.distro` — per-distribution knowledge: packages, fix commands, defaults;
* :mod:`~kit.doctor.probes` — real attempts in a fresh interpreter (``python -m kit.doctor``);
* :mod:`~kit.doctor.context` — the inputs every check decides from;
* :mod:`~kit.doctor.checks` — the checks themselves;
* :mod:`~kit.doctor.requirements` — named needs of lessons and whether this machine meets them.
"""

from __future__ import annotations

from kit.doctor.check import MARKS, STATUSES, Check
from kit.doctor.checks import can_run_containers, evaluate, explain_blockers, run_checks
from kit.doctor.checks.cgroups import check_cgroups
from kit.doctor.checks.environment import check_environment
from kit.doctor.checks.identity import (
    check_privileges,
    check_python,
    check_subids,
    check_user_namespaces,
)
from kit.doctor.checks.kernel import check_namespaces, check_overlay, check_propagation
from kit.doctor.checks.security import (
    AUDIT_ARCH,
    SECCOMP_ACTIONS,
    check_landlock,
    check_lsms,
    check_seccomp,
    landlock_abi,
)
from kit.doctor.checks.tools import check_busybox, check_tool
from kit.doctor.context import Context
from kit.doctor.distro import PACKAGES, Blocker, Host, userns_blockers
from kit.doctor.parsing import (
    LESSON_CONTROLLERS,
    V1_CONTROLLERS,
    CgroupLayout,
    container_hints,
    distro_family,
    filesystem_of,
    parse_cgroup_layout,
    parse_os_release,
    root_propagation,
    v2_cgroup_path,
    version_tuple,
)
from kit.doctor.probes import NAMESPACE_KINDS, REQUIRED_NAMESPACES, probe, run_probes
from kit.doctor.requirements import Assessment, Facts, assess
from kit.security.userns import parse_subids

__all__ = [
    "AUDIT_ARCH",
    "LESSON_CONTROLLERS",
    "MARKS",
    "NAMESPACE_KINDS",
    "PACKAGES",
    "REQUIRED_NAMESPACES",
    "SECCOMP_ACTIONS",
    "STATUSES",
    "V1_CONTROLLERS",
    "Assessment",
    "Blocker",
    "CgroupLayout",
    "Check",
    "Context",
    "Facts",
    "Host",
    "assess",
    "can_run_containers",
    "check_busybox",
    "check_cgroups",
    "check_environment",
    "check_landlock",
    "check_lsms",
    "check_namespaces",
    "check_overlay",
    "check_privileges",
    "check_propagation",
    "check_python",
    "check_seccomp",
    "check_subids",
    "check_tool",
    "check_user_namespaces",
    "container_hints",
    "distro_family",
    "evaluate",
    "explain_blockers",
    "filesystem_of",
    "landlock_abi",
    "parse_cgroup_layout",
    "parse_os_release",
    "parse_subids",
    "probe",
    "root_propagation",
    "run_checks",
    "run_probes",
    "userns_blockers",
    "v2_cgroup_path",
    "version_tuple",
]
