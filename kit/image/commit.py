"""A container's writable layer, read as changes (``kit diff``) or made a layer (``kit commit``).

The upper directory of a container's overlay already is a layer in overlayfs's form: new and
changed files, whiteouts for deletions, opaque marks for replaced directories. Committing
packs it as a tar exactly like a build step does, on top of the image the container came
from, so ``kit run NEW`` sees what the container saw. A container that ran in a user
namespace wrote its files with host ids; the layer records the ids it had inside.
"""

from __future__ import annotations

import time

from kit.errors import KitError
from kit.image import layer as layers
from kit.image import media
from kit.image import reference as references
from kit.image.container import image_record, writable_layer
from kit.image.documents import Descriptor
from kit.image.image import Image, new_config, write_image
from kit.image.store import Store
from kit.layers_view import Change, container_diff
from kit.runtime import state
from kit.security.userns import container_ids


def _image_of(store: Store, container_id: str) -> Image:
    record = image_record(container_id)
    data = store.read_blob(record["manifest"], what="manifest of the container's image")
    return Image.load(store, Descriptor(media.OCI_MANIFEST, record["manifest"], len(data)))


def changes(container: str) -> list[Change]:
    """The container's changes, as ``docker diff`` lists them."""
    found = state.find(container)
    store = Store()
    image = _image_of(store, found.id)
    return container_diff(writable_layer(found.id).upper, image.layer_dirs())


def _owners(container_id: str) -> layers.OwnerMap | None:
    """host -> container ids for the container's files (None: no user namespace)."""
    try:
        return container_ids(state.load_spec(container_id))
    except KitError:
        return None


def commit(container: str, name: str, *, message: str = "") -> Image:
    """Pack the container's writable layer onto its image; tag the result ``name``."""
    found = state.find(container)
    store = Store().init()
    base = _image_of(store, found.id)
    upper = writable_layer(found.id).upper
    packed = layers.pack_into_store(store, upper, owners=_owners(found.id))
    config = new_config(base.config.raw)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config["created"] = now
    config["rootfs"]["diff_ids"].append(packed.diff_id)
    config.setdefault("history", []).append(
        {
            "created": now,
            "created_by": f"kit commit {found.name}",
            "comment": message or "kit commit",
        }
    )
    image = write_image(
        store, config, [*base.manifest.layers, packed.desc], references.parse(name).name
    )
    image.unpack()
    return image
