"""``kit build``: Kitfile instructions, layers, cache, and errors with file and line."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from image_helpers import assert_store_consistent, busybox_tree, image_from_dirs, kit

from kit.errors import KitError
from kit.image.build import Builder
from kit.image.kitfile import KitfileError, parse
from kit.image.store import Store


@pytest.fixture
def base(kit_root: Path, tmp_path: Path) -> str:
    tools = ("sh", "ls", "cat", "echo", "id", "pwd", "rm", "mkdir", "touch")
    image_from_dirs(Store().init(), [busybox_tree(tmp_path / "base", tools)], "base:1")
    return "base:1"


def _context(tmp_path: Path, kitfile: str) -> Path:
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Kitfile").write_text(kitfile)
    return context


def _build(context: Path, tag: str = "t:1", **kw: object) -> tuple[object, str]:
    log = io.StringIO()
    result = Builder(Store(), str(context), log=log, **kw).build(tag)  # type: ignore[arg-type]
    return result, log.getvalue()


def test_every_instruction(kit_root: Path, tmp_path: Path, base: str) -> None:
    context = _context(
        tmp_path,
        "# a comment\n"
        f"FROM {base}\n"
        "LABEL team=kit version=1\n"
        "ENV APP_HOME=/app \\\n"
        "    GREETING=hello\n"
        "ENV MESSAGE=$GREETING-from-$APP_HOME\n"
        "COPY app.sh $APP_HOME/\n"
        "COPY --chown=1000:50 data /data\n"
        "ADD extra.tar /opt/\n"
        "WORKDIR /app\n"
        'RUN ["/bin/sh", "-c", "echo $MESSAGE > built.txt; pwd >> built.txt"]\n'
        "USER app\n"
        'ENTRYPOINT ["/bin/sh"]\n'
        "CMD /app/app.sh\n",
    )
    (context / "app.sh").write_text("#!/bin/sh\necho app says $GREETING as $(id -u)\n")
    (context / "app.sh").chmod(0o755)
    (context / "data").mkdir()
    (context / "data" / "d.txt").write_text("data")
    extra = tmp_path / "extra"
    (extra / "tool").mkdir(parents=True)
    (extra / "tool" / "bin").write_text("tool")
    subprocess.run(["tar", "-C", str(extra), "-cf", str(context / "extra.tar"), "tool"])
    result, log = _build(context)
    image = result.image  # type: ignore[attr-defined]
    assert len(image.manifest.layers) == 1 + 4  # base + COPY, COPY, ADD, RUN
    run = image.config.run
    assert run["Labels"] == {"team": "kit", "version": "1"}
    assert "MESSAGE=hello-from-/app" in run["Env"]
    assert run["WorkingDir"] == "/app" and run["User"] == "app"
    assert run["Entrypoint"] == ["/bin/sh"]
    assert run["Cmd"] == ["/bin/sh", "-c", "/app/app.sh"]
    assert "STEP 10/12: USER app" in log
    out = kit(
        "run",
        "--rm",
        "t:1",
        "-c",
        "cat built.txt /opt/tool/bin; echo; ls -ln /data/d.txt; /app/app.sh",
        root=kit_root,
    ).stdout.splitlines()
    assert out[0:3] == ["hello-from-/app", "/app", "tool"]
    assert out[3].split()[2:4] == ["1000", "50"]
    assert out[4] == "app says hello as 1000"
    history = kit("history", "t:1", root=kit_root).stdout
    assert "COPY app.sh $APP_HOME/" in history and "LABEL team=kit version=1" in history


def test_run_deletions_become_whiteouts(kit_root: Path, tmp_path: Path, base: str) -> None:
    context = _context(tmp_path, f"FROM {base}\nRUN rm /bin/ls /etc/group\n")
    result, _ = _build(context)
    image = result.image  # type: ignore[attr-defined]
    top = Path(image.layer_dirs()[-1])
    assert sorted(p.name for p in (top / "bin").iterdir()) == ["ls"]
    from kit import overlay

    assert overlay.is_whiteout((top / "bin" / "ls").lstat())
    out = kit(
        "run", "--rm", "t:1", "/bin/sh", "-c", "ls /bin/ls /etc/group", root=kit_root, check=False
    )
    assert out.stderr.count("No such file") == 2
    # Nothing of the build's container is left: no mount points in the layer.
    assert not (top / "proc").exists() and not (top / "dev").exists()


def test_cache(kit_root: Path, tmp_path: Path, base: str) -> None:
    context = _context(
        tmp_path,
        f"FROM {base}\nCOPY a /a\nRUN echo ran >> /ran\nCOPY b /b\n",
    )
    (context / "a").write_text("a1")
    (context / "b").write_text("b1")
    first, _ = _build(context)
    again, log = _build(context)
    assert again.cached == 3 and log.count("using cache") == 3  # type: ignore[attr-defined]
    assert again.image.manifest.layers == first.image.manifest.layers  # type: ignore[attr-defined]
    (context / "b").write_text("b2")  # only the last step changes
    third, _ = _build(context)
    assert third.cached == 2  # type: ignore[attr-defined]
    (context / "a").write_text("a2")  # everything after the first COPY is rebuilt
    fourth, _ = _build(context)
    assert fourth.cached == 0  # type: ignore[attr-defined]
    nocache, _ = _build(context, use_cache=False)
    assert nocache.cached == 0  # type: ignore[attr-defined]


def test_failing_run_names_the_line(kit_root: Path, tmp_path: Path, base: str) -> None:
    context = _context(tmp_path, f"FROM {base}\nENV A=1\nRUN echo before; exit 3\n")
    tags_before = Store().tags()
    with pytest.raises(KitError) as caught:
        _build(context)
    assert "Kitfile:3" in str(caught.value) and "exited with status 3" in str(caught.value)
    assert Store().tags() == tags_before
    assert_store_consistent(kit_root)


def test_cli_build(kit_root: Path, tmp_path: Path, base: str) -> None:
    context = _context(tmp_path, f"FROM {base}\nRUN echo output-of-run\n")
    result = kit("build", "-t", "cli:1", str(context), root=kit_root)
    assert "output-of-run" in result.stderr and "STEP 2/2" in result.stderr
    images = kit("images", "--json", root=kit_root).stdout
    assert '"repository": "cli"' in images
    bad = _context(tmp_path, "FROM base:1\nFROB x\n")
    failed = kit("build", str(bad), root=kit_root, check=False)
    assert failed.returncode == 2 and "Kitfile:2: unknown instruction 'FROB'" in failed.stderr


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("RUN echo\n", 1, "not FROM"),
        ("FROM a\n\nFROB x\n", 3, "unknown instruction"),
        ("FROM a\nCOPY onlyone\n", 2, "source and a destination"),
        ('FROM a\nCMD ["unclosed"\n', 2, "not valid JSON"),
        ("FROM a\nCMD [1, 2]\n", 2, "list of strings"),
        ("FROM a\nENV =x\n", 2, "KEY=VALUE"),
        ("FROM a\nRUN echo \\\n", 2, "nothing follows"),
        ("FROM a\nFROM b\n", 2, "second FROM"),
        ("FROM a\nWORKDIR\n", 2, "needs arguments"),
        ("FROM a\nCOPY --from=x a b\n", 2, "unknown COPY flag"),
        ("", 1, "empty"),
        ("FROM a\nRUN echo 'unclosed\n", 2, "close the quotes"),
    ],
)
def test_syntax_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(KitfileError) as caught:
        parse(text, "ctx/Kitfile")
    assert caught.value.line == line
    assert f"ctx/Kitfile:{line}:" in str(caught.value)
    assert words in str(caught.value)


def test_sources_outside_the_context(kit_root: Path, tmp_path: Path, base: str) -> None:
    (tmp_path / "secret").write_text("outside")
    context = _context(tmp_path, f"FROM {base}\nCOPY ../secret /s\n")
    with pytest.raises(KitError, match=r"Kitfile:2: COPY source '../secret' is outside"):
        _build(context)
    (context / "link").symlink_to(tmp_path / "secret")
    (context / "Kitfile").write_text(f"FROM {base}\nCOPY link /s\n")
    with pytest.raises(KitError, match="outside the build context"):
        _build(context)
    (context / "Kitfile").write_text(f"FROM {base}\nCOPY missing /s\n")
    with pytest.raises(KitError, match="Kitfile:2: COPY source 'missing' not found"):
        _build(context)


def test_copy_never_writes_through_a_link_an_earlier_source_made(
    kit_root: Path, tmp_path: Path, base: str
) -> None:
    """COPY a b /d/, where a/x links to a host directory: b/x/file must not land there."""
    victim = tmp_path / "victim"
    victim.mkdir()
    context = _context(tmp_path, f"FROM {base}\nCOPY a b /d/\n")
    (context / "a").mkdir()
    (context / "a" / "x").symlink_to(victim)
    (context / "b" / "x").mkdir(parents=True)
    (context / "b" / "x" / "file").write_text("not for the host\n")
    with pytest.raises(KitError, match=r"Kitfile:2: COPY would write through /d/x, a symlink"):
        _build(context)
    assert list(victim.iterdir()) == []


def test_missing_base_image(kit_root: Path, tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM nowhere:1\n")
    with pytest.raises(KitError, match=r"Kitfile:1: base image 'nowhere:1' is not in the store"):
        _build(context)
