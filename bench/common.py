"""Shared helpers for benchmarks: timing commands side by side and reporting medians."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def kit_executable() -> list[str]:
    """The installed ``kit`` command as users run it (not pyenv's slow shell shim)."""
    beside_python = Path(sys.executable).with_name("kit")
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("kit")
    return [found] if found else [sys.executable, "-m", "kit"]


#: Set to a directory holding another checkout's ``kit`` package (for example
#: ``git archive OLD kit | tar -x -C DIR``) to time that kit too, side by side in the same run.
BASELINE_VARIABLE = "KIT_BENCH_BASELINE"


def kit_variants(env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Label suffix -> environment for each kit to time: this checkout's (suffix ""), and the
    baseline's (" [baseline]") when KIT_BENCH_BASELINE names one. Both run through the same
    ``kit`` command; PYTHONPATH puts the baseline's package first."""
    base = dict(env if env is not None else os.environ)
    variants = {"": base}
    baseline = os.environ.get(BASELINE_VARIABLE)
    if baseline:
        variants[" [baseline]"] = {**base, "PYTHONPATH": os.path.abspath(baseline)}
    return variants


def compile_bytecode() -> None:
    """Compile kit (and the baseline) to bytecode first, as an installed package is.

    With PYTHONDONTWRITEBYTECODE set (some sandboxes set it), Python never writes the
    ``__pycache__`` of an editable checkout, and every kit start would compile the modules
    that changed since from source: the benchmark would time the compiler, not kit.
    """
    import compileall

    import kit

    packages = [Path(kit.__file__).resolve().parent]
    baseline = os.environ.get(BASELINE_VARIABLE)
    if baseline:
        packages.append(Path(baseline) / "kit")
    for package in packages:
        compileall.compile_dir(str(package), quiet=1)


#: subprocess.run options that keep a timed command off the terminal.
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL}


def runc_bundle(bundle: Path, rootfs: Path, args: list[str], readonly: bool) -> Path:
    """An OCI bundle runc and kit can both run: ``runc spec``'s config.json, with ``rootfs``
    as its root and ``args`` as its process (no terminal)."""
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": readonly}
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def time_command(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one run; a failing run is an error, not a fast sample."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved(
    contenders: dict[str, Callable[[int], float]], runs: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Run each contender ``runs`` times, alternating between them so drift hits all equally."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(warmup):
        for measure in contenders.values():
            measure(-1 - i)
    for i in range(runs):
        for name, measure in contenders.items():
            samples[name].append(measure(i))
    return samples


def report(title: str, samples: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Print medians (ms) and each contender's ratio to ``baseline``; return the medians."""
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"\n{title}")
    print(f"  {'contender':<34} {'median ms':>10} {'ratio':>8}")
    for name, median in medians.items():
        ratio = median / medians[baseline]
        print(f"  {name:<34} {median:>10.1f} {ratio:>7.2f}x")
    return medians


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench: {tool} is not installed (sudo apt-get install -y {tool})")
    return path


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A scratch directory for one benchmark (``/tmp/PREFIX*``), removed with everything in it
    when the benchmark ends, however it ends."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def machine() -> str:
    return f"{os.uname().machine}, kernel {os.uname().release}, {os.cpu_count()} cpus"
