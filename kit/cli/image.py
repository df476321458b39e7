"""Image commands: build, images, rmi, history, tag, import, save, pull, layers, which.

kit build -t hello:1 .                  # run ./Kitfile, one layer per COPY/ADD/RUN
kit images                              # what the store holds
kit pull 127.0.0.1:5000/tools/box:1     # from a registry (token auth, manifest lists)
kit import busybox.tar                  # a `docker save` or OCI layout archive
kit save -o out.tar hello:1             # to an OCI layout (tar, or a directory)
kit layers hello:1                      # per layer: added/changed/removed files, wasted bytes
kit which hello:1 /etc/passwd           # which layer supplied a file, what it shadows
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

#: The commands this module registers (see kit.cli).
COMMANDS = (
    "build",
    "images",
    "rmi",
    "history",
    "tag",
    "import",
    "save",
    "pull",
    "layers",
    "which",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build", help="build an image from a Kitfile")
    p.add_argument("-t", "--tag", metavar="NAME[:TAG]", help="name the image")
    p.add_argument("-f", "--file", metavar="KITFILE", help="the Kitfile (default: DIR/Kitfile)")
    p.add_argument("--no-cache", action="store_true", help="build every step again")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("context", metavar="DIR", help="the build context directory")
    p.set_defaults(func=build_command)

    p = subparsers.add_parser("images", help="list images")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-q", "--quiet", action="store_true", help="only the ids")
    p.set_defaults(func=images_command)

    p = subparsers.add_parser("rmi", help="remove images (their unused layers go too)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=rmi_command)

    p = subparsers.add_parser("history", help="show the steps that made an image")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=history_command)

    p = subparsers.add_parser("tag", help="give an image another name")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.set_defaults(func=tag_command)

    p = subparsers.add_parser("import", help="import a docker-save or OCI layout tar")
    p.add_argument("file", metavar="FILE")
    p.add_argument("name", nargs="?", metavar="NAME[:TAG]", help="name the image(s) this")
    p.set_defaults(func=import_command)

    p = subparsers.add_parser("save", help="save an image as an OCI layout (tar or directory)")
    p.add_argument("-o", "--output", required=True, metavar="FILE|DIR")
    p.add_argument("--format", choices=["tar", "dir"], help="default: tar if FILE ends in .tar")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(func=save_command)

    p = subparsers.add_parser("pull", help="pull an image from a registry")
    p.add_argument("reference", metavar="[HOST/]NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="from a multi-platform image")
    p.add_argument("--insecure", action="store_true", help="plain HTTP (loopback is always)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=pull_command)

    p = subparsers.add_parser("layers", help="what each layer of an image adds, changes, removes")
    p.add_argument("image", metavar="IMAGE|CONTAINER")
    p.add_argument("--all", action="store_true", help="list every change (default: 20 a layer)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=layers_command)

    p = subparsers.add_parser("which", help="which layer a file in an image or container is from")
    p.add_argument("target", metavar="IMAGE|CONTAINER")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=which_command)


# --- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_display(quiet: bool = False) -> Iterator[Any]:
    """A progress callback: a Rich bar on a terminal, nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=True
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total or None)
            bar.update(tasks[what], completed=done, total=total or None)

        yield update


def _store():  # type: ignore[no-untyped-def]
    from kit.image.store import Store

    return Store().init()


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


# --- commands --------------------------------------------------------------------------------


def build_command(args: argparse.Namespace) -> int:
    import io

    from kit.image.build import Builder

    log = io.StringIO() if args.quiet else sys.stderr
    builder = Builder(
        _store(),
        args.context,
        args.file,
        log=log,
        use_cache=not args.no_cache,
        output_fd=None if args.quiet else sys.stderr.fileno(),
    )
    result = builder.build(args.tag)
    sys.stdout.write((result.image.id if args.quiet else f"{result.image.short_id}") + "\n")
    return 0


def images_command(args: argparse.Namespace) -> int:
    from kit.image.image import list_images
    from kit.layers_view import human

    images = list_images(_store())
    if args.quiet:
        for image in images:
            sys.stdout.write(image.short_id + "\n")
        return 0
    rows = []
    for image in images:
        size = sum(layer.size for layer in image.manifest.layers)
        created = image.config.raw.get("created") or ""
        for name in image.names:
            repo, _, tag = name.rpartition(":")
            rows.append(
                {
                    "repository": repo,
                    "tag": tag,
                    "id": image.id,
                    "created": created,
                    "layers": len(image.chain_ids),
                    "size": size,
                }
            )
    if args.json:
        _print_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("REPOSITORY", "TAG", "IMAGE ID", "LAYERS", "SIZE", "CREATED"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["repository"],
            row["tag"],
            row["id"][7:19],
            str(row["layers"]),
            human(row["size"]),
            str(row["created"])[:19],
        )
    Console(soft_wrap=True).print(table)
    return 0


def rmi_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.image.container import layers_in_use
    from kit.image.image import resolve

    store = _store()
    tags = store.tags()
    for text in args.images:
        image = resolve(store, text)
        names = [text] if text in tags else [n for n in image.names if n in tags]
        if text not in tags and len(image.names) > 1:
            raise KitError(
                f"image {image.short_id} has several names: {', '.join(image.names)}",
                fix="remove them one at a time by name",
            )
        for name in names or image.names:
            store.untag(name)
            sys.stdout.write(f"Untagged: {name}\n")
    blobs, layers = store.collect(layers_in_use())
    sys.stdout.write(f"Deleted: {blobs} blobs, {layers} unpacked layers\n")
    return 0


def history_command(args: argparse.Namespace) -> int:
    from kit.image.image import resolve
    from kit.layers_view import human

    image = resolve(_store(), args.image)
    rows = []
    for layer, entry in _history(image):
        rows.append(
            {
                "created": entry.get("created", ""),
                "created_by": entry.get("created_by", ""),
                "layer": layer.digest if layer else None,
                "size": layer.size if layer else 0,
            }
        )
    rows.reverse()  # newest first, like docker history
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        digest = row["layer"][7:19] if row["layer"] else "<config>    "
        sys.stdout.write(
            f"{digest}  {str(row['created'])[:19]:<19}  {human(row['size']):>9}  "
            f"{row['created_by']}\n"
        )
    return 0


def _history(image: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(layer descriptor or None, history entry), oldest first.

    History entries with ``empty_layer`` belong to no layer. When an image has fewer entries
    than layers (history is optional), the entries describe the newest layers.
    """
    entries = image.config.history
    layers = list(image.manifest.layers)
    with_layer = [e for e in entries if not e.get("empty_layer")]
    missing = max(0, len(layers) - len(with_layer))
    out: list[tuple[Any, dict[str, Any]]] = [(layer, {}) for layer in layers[:missing]]
    rest = iter(layers[missing:])
    for entry in entries:
        out.append((None if entry.get("empty_layer") else next(rest, None), entry))
    return out


def tag_command(args: argparse.Namespace) -> int:
    from kit.image.image import resolve
    from kit.image.reference import parse

    store = _store()
    image = resolve(store, args.image)
    store.tag(parse(args.name).name, image.desc)
    return 0


def import_command(args: argparse.Namespace) -> int:
    from kit.image.archive import import_archive

    with progress_display() as progress:
        images = import_archive(_store(), args.file, name=args.name, progress=progress)
    for image in images:
        sys.stdout.write(f"Loaded image: {', '.join(image.names) or image.short_id}\n")
    return 0


def save_command(args: argparse.Namespace) -> int:
    from kit.image.archive import save
    from kit.image.image import resolve

    image = resolve(_store(), args.image)
    tag = args.image if args.image in image.names else None
    as_tar = None if args.format is None else args.format == "tar"
    kind = save(image, args.output, tag=tag, as_tar=as_tar)
    sys.stdout.write(f"saved {image.short_id} to {args.output} (OCI layout {kind})\n")
    return 0


def pull_command(args: argparse.Namespace) -> int:
    from kit.errors import KitError
    from kit.image.registry import pull

    platform = None
    if args.platform:
        parts = args.platform.split("/")
        if len(parts) not in (2, 3):
            raise KitError(
                f"invalid --platform {args.platform!r}", fix="e.g. linux/amd64", exit_code=2
            )
        platform = {"os": parts[0], "architecture": parts[1]}
        if len(parts) == 3:
            platform["variant"] = parts[2]

    def say(message: str) -> None:
        if not args.quiet:
            sys.stderr.write(message + "\n")

    with progress_display(args.quiet) as progress:
        image = pull(
            _store(),
            args.reference,
            platform=platform,
            insecure=args.insecure or None,
            progress=progress,
            on_message=say,
        )
    sys.stdout.write(f"{image.names[0] if image.names else image.short_id}  {image.desc.digest}\n")
    return 0


def _stack_for(target: str) -> tuple[list[tuple[Any, str, str]], list[tuple[str, str]]]:
    """Layers (dir, label, created_by) bottom first, and mounts, of an image or container."""
    from kit.errors import KitError
    from kit.image.image import Image, resolve

    store = _store()
    try:
        image = resolve(store, target)
        container = None
    except KitError as not_image:
        from kit.image.container import image_record, writable_layer
        from kit.runtime import state

        try:
            container = state.find(target)
        except KitError:
            raise not_image from None
        record = image_record(container.id)
        tags = {d.digest: d for d in store.tags().values()}
        desc = tags.get(record["manifest"])
        if desc is None:
            from kit.image import media
            from kit.image.documents import Descriptor

            data = store.read_blob(record["manifest"], what="manifest")
            desc = Descriptor(media.OCI_MANIFEST, record["manifest"], len(data))
        image = Image.load(store, desc)
    created = {id(layer): e.get("created_by", "") for layer, e in _history(image) if layer}
    stack: list[tuple[Any, str, str]] = []
    for layer, diff in zip(image.manifest.layers, image.layer_dirs(), strict=True):
        stack.append((diff, f"{layer.digest[7:19]}", str(created.get(id(layer), ""))))
    mounts: list[tuple[str, str]] = []
    if container is not None:  # found in the except branch above, which imported its helpers
        stack.append(
            (
                writable_layer(container.id).upper,
                "container " + container.name,
                "the container's writable layer",
            )
        )
        spec = state.load_spec(container.id)
        for m in spec.mounts:
            if m.destination in ("/proc", "/sys", "/dev") or m.destination.startswith("/dev/"):
                continue
            bind = m.type in (None, "bind") or "bind" in m.options or "rbind" in m.options
            kind = f"bind mount of {m.source}" if bind else f"{m.type} mount"
            mounts.append((m.destination, kind))
    return stack, mounts


def layers_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kit.layers_view import layer_stack

    stack, _ = _stack_for(args.image)
    view = layer_stack(stack)
    if args.json:
        _print_json({"layers": [asdict(layer) for layer in view.layers], "wasted": view.wasted})
        return 0
    sys.stdout.write("\n".join(view.lines(max_changes=None if args.all else 20)) + "\n")
    return 0


def which_command(args: argparse.Namespace) -> int:
    from kit.layers_view import which

    stack, mounts = _stack_for(args.target)
    result = which([(d, label) for d, label, _ in stack], args.path, mounts=mounts)
    sys.stdout.write("\n".join(result.lines()) + "\n")
    return 0 if result.supplier or result.mount else 1
