"""Every doctor check, in the order ``kit doctor`` prints them, and the verdict on them.

A check is a function of a :class:`~kit.doctor.context.Context` returning a
:class:`~kit.doctor.check.Check`. Each module holds one concern: who runs kit (identity),
the kernel's container features (kernel), cgroups, security controls, the environment, tools.
"""

from __future__ import annotations

from collections.abc import Callable

from kit.doctor.check import Check
from kit.doctor.checks.cgroups import check_cgroups
from kit.doctor.checks.environment import check_environment
from kit.doctor.checks.identity import (
    check_privileges,
    check_python,
    check_subids,
    check_user_namespaces,
)
from kit.doctor.checks.kernel import check_namespaces, check_overlay, check_propagation
from kit.doctor.checks.security import check_landlock, check_lsms, check_seccomp
from kit.doctor.checks.tools import TOOL_USES, check_busybox, check_tool
from kit.doctor.context import Context

__all__ = ["can_run_containers", "checks", "evaluate", "explain_blockers", "run_checks"]


def checks() -> list[tuple[str, Callable[[Context], Check]]]:
    """``(name, check)`` pairs in the order they are printed."""
    return [
        ("python", check_python),
        ("privileges", check_privileges),
        ("user namespaces", check_user_namespaces),
        ("namespaces", check_namespaces),
        ("overlayfs", check_overlay),
        ("mount propagation", check_propagation),
        ("cgroups", check_cgroups),
        ("seccomp", check_seccomp),
        ("landlock", check_landlock),
        ("security modules", check_lsms),
        ("environment", check_environment),
        ("subordinate ids", check_subids),
        ("busybox", check_busybox),
        *[(tool, lambda ctx, tool=tool: check_tool(ctx, tool)) for tool in TOOL_USES],
    ]


def evaluate(ctx: Context) -> list[Check]:
    """Run every check on a context (this machine's, or a sample one in a test)."""
    results: list[Check] = []
    for name, check in checks():
        try:
            results.append(check(ctx))
        except Exception as exc:  # a doctor that crashes helps nobody
            results.append(
                Check(
                    name,
                    "warn",
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    "report this as a kit bug, with the output of `kit doctor --json`",
                )
            )
    return results


def run_checks() -> list[Check]:
    """Run every check on this machine (one probe interpreter; about a second)."""
    return evaluate(Context.gather())


def can_run_containers(results: list[Check]) -> bool:
    """True when no check failed: a failed check is one that stops every container."""
    return not any(check.status == "fail" for check in results)


def explain_blockers(results: list[Check]) -> str:
    """One paragraph: why this machine cannot run containers and what to do, or that it can."""
    failed = [c for c in results if c.status == "fail"]
    warned = [c for c in results if c.status == "warn"]
    if not failed:
        text = "This machine can run kit's containers."
        if warned:
            names = ", ".join(c.name for c in warned)
            text += (
                f" Warnings ({names}) concern single lessons or setups: each says what it "
                "means here and how to fix it; lessons that need a missing feature say so."
            )
        return text
    reasons = " ".join(
        f"{c.name.capitalize()}: {c.detail}." + (f" To fix: {c.fix}." if c.fix else "")
        for c in failed
    )
    return (
        "This machine cannot run containers with kit yet. A container is made of kernel "
        "features (namespaces, mounts, overlayfs), so kit checks that the kernel offers them "
        f"to this user before starting. {reasons} Then run `kit doctor` again."
    )
