"""Images: the content-addressed store, layers, builds, imports and registry pulls.

An image is a small tree of JSON documents pointing at blobs by digest (``sha256:...``):

* an **index** (``index.json``) names images by tag and points at their manifests;
* a **manifest** lists the image's config and its layers, in order;
* a **config** holds how to run the image (Env, Cmd, WorkingDir, User) and ``rootfs.diff_ids``,
  the digests of the *uncompressed* layer tars;
* a **layer** is a tar of the files one build step added, changed or deleted.

kit keeps all of it in the OCI image layout (https://github.com/opencontainers/image-spec),
the same on-disk format umoci and skopeo read, and unpacks each layer once into a directory
keyed by its *chain id*, ready to be stacked by overlayfs (see :mod:`kit.overlay`).

Modules: :mod:`~kit.image.digest` (hashes and ids), :mod:`~kit.image.media` (media types),
:mod:`~kit.image.documents` (parsing and checking the JSON), :mod:`~kit.image.store` (the
store), :mod:`~kit.image.layer` (layer tars both ways, whiteouts), :mod:`~kit.image.image`
(an image as a stack of layers), :mod:`~kit.image.container` (a container's writable layer),
:mod:`~kit.image.kitfile` and :mod:`~kit.image.build` (builds), :mod:`~kit.image.archive`
(import and save), :mod:`~kit.image.registry` (pulls).
"""
