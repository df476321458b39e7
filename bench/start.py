"""Container start: ``kit run --rm --rootfs R /bin/true`` against ``runc run`` (same rootfs).

Both run the same root filesystem built by kit from the host's programs, with the same
namespaces; the runc bundle is ``runc spec`` with the process set to /bin/true. Runs alternate
between the two. Also shown: a bare ``python3 -c pass`` (the interpreter's own start-up on this
machine), which is part of every kit command, and three rows that show what of kit's time is this
machine's Python rather than kit:

* ``kit run --rm`` started with ``python3 -S``: the same kit, without the ``.pth`` files of
  site-packages (which run for every Python program; some machines, this sandbox included,
  add slow ones);
* a bare container start in Python (``floor/bare_container.py``): namespaces, the root,
  /proc, pivot_root, execve, nothing else and no kit. Whatever a Python engine adds to it
  (cgroups, /dev, masked paths, capabilities, seccomp, a record) must fit in what is left;
* "bare container + site + stdlib": the same, started as the ``kit`` command starts (with
  site-packages) and after importing what kit's design needs from the standard library
  (argparse, dataclasses, json): the least an engine built like kit spends here before any of
  its own code runs.

With KIT_BENCH_BASELINE=DIR (a directory holding another checkout's ``kit`` package), that
kit is timed too, in the same alternation ("kit@baseline").

``--breakdown`` also splits kit's median into where the time goes: the interpreter's start-up
(with and without this machine's site-packages ``.pth`` files, which run for every Python
program), importing what ``kit run`` imports, the container's own setup (first stage to
execve, from ``--events json``), the program and teardown until the exit is reported, and
what is left: the CLI's own work (parsing, the spec, the record, fork, waiting, removal) and
the interpreter's exit.

    python3 bench/start.py [--runs N] [--breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    compile_bytecode,
    interleaved,
    kit_executable,
    kit_variants,
    machine,
    report,
    require,
    runc_bundle,
    scratch,
    time_command,
)

HERE = Path(__file__).resolve().parent
WITHOUT_SITE = "kit run --rm, python3 -S (no .pth)"
FLOOR = "bare container in Python (no kit)"
DESIGN_FLOOR = "bare container + site + stdlib"


def kit_without_site() -> list[str]:
    """``kit`` as the installed command runs it, but by an interpreter started with -S: no
    site-packages and none of its ``.pth`` files; kit's own directory goes on sys.path."""
    import kit

    where = str(Path(kit.__file__).resolve().parent.parent)
    launch = (
        f"import sys; sys.path.insert(0, {where!r}); sys.argv[0] = 'kit'; "
        "from kit.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-S", "-c", launch]


#: The modules ``kit run`` imports (each pulls in the rest of the run path).
RUN_PATH_MODULES = (
    "kit.cli.run",
    "kit.cli.run_isolation",
    "kit.cli.run_security",
    "kit.cli.run_mounts",
    "kit.cli.foreground",
    "kit.runtime.init",
)


def container_phases(
    kit: list[str], rootfs: Path, env: dict[str, str], events: Path
) -> tuple[float, float]:
    """(setup, program and teardown) in seconds, from one run's event stream: the first
    stage's start to the execve, and the execve to the reported exit."""
    events.unlink(missing_ok=True)
    traced = ["--events", "json", "--events-file", str(events)]
    subprocess.run(
        [*kit, "run", "--rm", *traced, "--rootfs", str(rootfs), "/bin/true"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stream = [json.loads(line) for line in events.read_text().splitlines()]
    first = next(e["time"] for e in stream if e["kind"] == "stage")
    execve = next(e["time"] for e in stream if e["kind"] == "syscall" and e["name"] == "execve")
    end = next(e["time"] for e in stream if e["kind"] == "exit")
    return execve - first, end - execve


def breakdown(
    medians: dict[str, float], kit: list[str], rootfs: Path, env: dict[str, str], runs: int
) -> None:
    # With the garbage collector set as kit's CLI sets it (kit.cli.main), so that only the
    # imports differ from `python3 -c pass`.
    imports = f"import gc; gc.set_threshold(20_000, 10, 10); import {', '.join(RUN_PATH_MODULES)}"
    samples = interleaved(
        {
            "python3 -S -c pass": lambda i: time_command([sys.executable, "-S", "-c", "pass"]),
            "python3 -c 'import <kit run path>'": lambda i: time_command(
                [sys.executable, "-c", imports + "; gc.freeze()"], env=env
            ),
        },
        runs=runs,
    )
    bare = statistics.median(samples["python3 -S -c pass"]) * 1000
    imported = statistics.median(samples["python3 -c 'import <kit run path>'"]) * 1000
    phases = [
        container_phases(kit, rootfs, env, Path(env["KIT_ROOT"]) / "events.jsonl")
        for _ in range(runs)
    ]
    setup = statistics.median(p[0] for p in phases) * 1000
    program = statistics.median(p[1] for p in phases) * 1000
    interpreter = medians["python3 -c pass (interpreter only)"]
    total = medians["kit run --rm"]
    rows = [
        ("interpreter, no site (python3 -S -c pass)", bare),
        ("site: site-packages and its .pth files here", interpreter - bare),
        ("importing kit run's modules (freed at exit)", imported - interpreter),
        ("container setup (first stage to execve)", setup),
        ("program and teardown (execve to exit report)", program),
    ]
    rest = total - sum(ms for _, ms in rows)
    rows.append(("the rest: CLI work, fork, wait, record", rest))
    print(
        f"\nwhere kit run's {total:.1f} ms go (medians of separate runs, so only roughly additive;"
        " the setup is timed with --events json, whose tracing makes it a little slower)"
    )
    for name, ms in rows:
        print(f"  {name:<46} {ms:>7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--breakdown", action="store_true", help="also split kit's time")
    args = parser.parse_args()
    require("runc")
    compile_bytecode()
    from kit.rootfs import build_rootfs

    with scratch("kit-bench-start-") as base:
        rootfs = base / "rootfs"
        build_rootfs(rootfs, "host")
        bundle = runc_bundle(base / "bundle", rootfs, ["/bin/true"], readonly=False)
        env = {**os.environ, "KIT_ROOT": str(base / "kit-root")}
        kit = kit_executable()
        runc_root = base / "runc-state"
        contenders = {
            "runc run": lambda i: time_command(
                ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), f"b{i + 10}"]
            ),
        }
        for suffix, variant_env in kit_variants(env).items():

            def run(i: int, variant_env: dict[str, str] = variant_env) -> float:
                argv = [*kit, "run", "--rm", "--rootfs", str(rootfs), "/bin/true"]
                return time_command(argv, env=variant_env)

            contenders["kit run --rm" + suffix] = run
        contenders[WITHOUT_SITE] = lambda i: time_command(
            [*kit_without_site(), "run", "--rm", "--rootfs", str(rootfs), "/bin/true"], env=env
        )
        contenders["python3 -c pass (interpreter only)"] = lambda i: time_command(
            [sys.executable, "-c", "pass"]
        )
        floor = HERE / "floor" / "bare_container.py"
        contenders[FLOOR] = lambda i: time_command(
            [sys.executable, "-S", str(floor), str(rootfs), "/bin/true"]
        )
        contenders[DESIGN_FLOOR] = lambda i: time_command(
            [sys.executable, str(floor), "--design-imports", str(rootfs), "/bin/true"]
        )
        samples = interleaved(contenders, runs=args.runs)
        print(f"machine: {machine()}; kit: {' '.join(kit)}; runs: {args.runs} each")
        medians = report("container start, /bin/true", samples, baseline="runc run")
        own = medians["kit run --rm"] - medians["python3 -c pass (interpreter only)"]
        print(f"  kit beyond the interpreter's start-up: {own:.1f} ms")
        if args.breakdown:
            breakdown(medians, kit, rootfs, env, args.runs)


if __name__ == "__main__":
    main()
