"""``kit seccomp``: look at a seccomp profile the way the kernel will run it.

kit seccomp show                          # kit's default profile, compiled to BPF
kit seccomp show --profile my.json        # a Docker/OCI profile file
kit seccomp show --cap-add SYS_ADMIN      # the default profile, given that capability
kit seccomp check my.json                 # is this profile well-formed? (exit 0 yes, 2 no)
"""

from __future__ import annotations

import argparse

#: The commands this module registers (see kit.cli).
COMMANDS = ("seccomp",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "seccomp",
        help="show or check seccomp profiles",
        description="Compile a seccomp profile into BPF and print it, or check a profile.",
    )
    commands = parser.add_subparsers(dest="seccomp_command", metavar="COMMAND", required=True)
    show = commands.add_parser("show", help="print the BPF program a profile compiles to")
    show.add_argument("--profile", metavar="FILE", help="a Docker or OCI profile (JSON)")
    show.add_argument("--cap-add", action="append", default=[], metavar="CAP")
    show.add_argument("--cap-drop", action="append", default=[], metavar="CAP")
    show.add_argument("--json", action="store_true", help="print the resolved OCI profile")
    show.set_defaults(func=show_command)
    check = commands.add_parser("check", help="check a profile file and say what is wrong")
    check.add_argument("profile", metavar="FILE")
    check.set_defaults(func=check_command)


def _resolved(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from kit.security import capabilities as caps
    from kit.security import seccomp_default, seccomp_profile

    names = caps.resolve(args.cap_add, args.cap_drop, everything=caps.available())
    if args.profile:
        data = seccomp_profile.load_file(args.profile)
        return seccomp_profile.resolve_docker(data, capabilities=names, source=args.profile)
    return seccomp_default.resolved_default_profile(names)


def show_command(args: argparse.Namespace) -> int:
    import json

    from kit.security import bpf
    from kit.security.seccomp_filter import compile_profile
    from kit.security.seccomp_profile import parse

    resolved = _resolved(args)
    if args.json:
        print(json.dumps(resolved, indent=2))
        return 0
    program = compile_profile(parse(resolved, source=args.profile or "kit's default"))
    print("\n".join(bpf.disassemble(program)))
    return 0


def check_command(args: argparse.Namespace) -> int:
    from kit.security import capabilities as caps
    from kit.security import seccomp_profile
    from kit.security.seccomp_filter import compile_profile

    data = seccomp_profile.load_file(args.profile)
    resolved = seccomp_profile.resolve_docker(
        data, capabilities=list(caps.DEFAULT_CAPABILITIES), source=args.profile
    )
    profile = seccomp_profile.parse(resolved, source=args.profile)
    program = compile_profile(profile)
    unknown = seccomp_profile.unknown_names(profile)
    print(f"{args.profile}: ok, {len(profile.rules)} rules, {len(program)} BPF instructions")
    if unknown:
        print(f"not a system call on any architecture kit knows: {', '.join(unknown)}")
    return 0
