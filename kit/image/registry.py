"""``kit pull``: fetch an image from an OCI / Docker registry (the distribution API v2).

The conversation, as Docker has it::

    GET /v2/REPO/manifests/TAG            Accept: index, manifest (OCI and Docker types)
    <- 401  WWW-Authenticate: Bearer realm="https://auth...",service="...",scope="repository:REPO:pull"
    GET REALM?service=...&scope=...       <- {"token": "..."}   (anonymous, or with a login)
    GET /v2/REPO/manifests/TAG            Authorization: Bearer ...
    <- an index (manifest list): pick the manifest for this platform, GET it by digest
    GET /v2/REPO/blobs/CONFIG_DIGEST      then every layer blob, streamed into the store

Every document and blob is checked against the digest that named it (a tag names nothing:
the manifest fetched by tag is checked against the registry's ``Docker-Content-Digest``
header, and everything under it by digest). The image is tagged only after all its layers
are stored and unpacked; a failure leaves the store as it was.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, BinaryIO

from kit.errors import KitError
from kit.image import media
from kit.image import reference as references
from kit.image.digest import sha256_bytes
from kit.image.documents import Descriptor, Index, Manifest
from kit.image.image import Image, Progress, select_platform
from kit.image.store import Store

#: Hosts spoken to over plain HTTP (like Docker, loopback registries need no TLS).
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
TIMEOUT = 60


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """Parse ``Bearer realm="...",service="..."`` into ("bearer", {realm:..., service:...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class Registry:
    """One registry host, with its bearer tokens."""

    def __init__(
        self, host: str, *, insecure: bool | None = None, auth: tuple[str, str] | None = None
    ) -> None:
        self.host = host
        plain = insecure if insecure is not None else bool(_LOOPBACK.match(host))
        self.base = f"{'http' if plain else 'https'}://{host}"
        self.auth = auth or _auth_from_env()
        self.tokens: dict[str, str] = {}

    # --- HTTP ------------------------------------------------------------------------------

    def request(self, path: str, *, scope: str, accept: str | None = None) -> Any:
        """GET ``path``; on 401 fetch a token as the challenge says and retry once."""
        headers = {"User-Agent": "kit"}
        if accept:
            headers["Accept"] = accept
        for attempt in (1, 2):
            if scope in self.tokens:
                headers["Authorization"] = f"Bearer {self.tokens[scope]}"
            try:
                return urllib.request.urlopen(
                    urllib.request.Request(self.base + path, headers=headers), timeout=TIMEOUT
                )
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 1:
                    self._authenticate(exc.headers.get("WWW-Authenticate", ""), scope)
                    continue
                raise self._http_error(exc, path) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise KitError(
                    f"cannot reach registry {self.host}",
                    cause=str(reason),
                    fix="check the name and port, and that the registry is running",
                ) from None
        raise AssertionError("unreachable")

    def _authenticate(self, header: str, scope: str) -> None:
        scheme, params = _challenge(header)
        if scheme != "bearer" or "realm" not in params:
            raise KitError(
                f"registry {self.host} wants {scheme or 'unknown'} authentication",
                cause=f"its challenge was {header!r}; kit speaks the bearer-token flow",
                fix="use a registry with token authentication, or none",
            )
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?")
        url += urllib.parse.urlencode(query)
        headers = {"User-Agent": "kit"}
        if self.auth:
            login = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {login}"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=TIMEOUT
            ) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise KitError(
                f"the token service of {self.host} refused: HTTP {exc.code} {exc.reason}",
                cause=f"asked {params['realm']} for {query['scope']}",
                fix="check the image name and your login (KIT_REGISTRY_AUTH=user:password)",
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise KitError(
                f"cannot get a token for {self.host} from {params['realm']}",
                cause=str(getattr(exc, "reason", exc)),
                fix="check the network and the registry's auth service",
            ) from None
        token = (
            answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        )
        if not isinstance(token, str):
            raise KitError(
                f"the token service of {self.host} answered without a token",
                fix="check the registry's auth configuration",
            )
        self.tokens[scope] = token

    def _http_error(self, exc: urllib.error.HTTPError, path: str) -> KitError:
        detail = ""
        with contextlib.suppress(Exception):
            body = json.loads(exc.read())
            detail = "; ".join(
                f"{e.get('code')}: {e.get('message')}" for e in body.get("errors", [])
            )
        fixes = {
            401: "log in (KIT_REGISTRY_AUTH=user:password) or check the image name",
            403: "your login may not read this repository",
            404: "check the image name and tag (`skopeo list-tags docker://...` lists tags)",
            429: "the registry limits requests: wait and try again",
        }
        return KitError(
            f"registry {self.host} answered HTTP {exc.code} {exc.reason} for {path}",
            cause=detail or None,
            fix=fixes.get(exc.code, "try again later, or check the registry's logs"),
        )

    # --- the API ---------------------------------------------------------------------------

    def manifest(self, repository: str, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, checked against its digest."""
        scope = f"repository:{repository}:pull"
        with self.request(
            f"/v2/{repository}/manifests/{ref}", scope=scope, accept=media.ACCEPT
        ) as response:
            data = response.read(8 << 20)
            kind = (response.headers.get("Content-Type") or "").split(";")[0].strip()
            claimed = response.headers.get("Docker-Content-Digest")
        actual = sha256_bytes(data)
        expected = ref if ref.startswith("sha256:") else claimed
        if expected and expected != actual:
            raise KitError(
                f"manifest digest mismatch from {self.host}/{repository}: expected {expected}, "
                f"got {actual}",
                cause="the registry (or something between) changed the document",
                fix="try again; if it persists, do not trust this registry",
            )
        if not kind or kind in ("application/json", "text/plain"):
            with contextlib.suppress(Exception):
                kind = json.loads(data).get("mediaType") or kind
        return data, kind, actual

    def blob(self, repository: str, digest: str) -> BinaryIO:
        return self.request(  # type: ignore[no-any-return]
            f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull"
        )


def _auth_from_env() -> tuple[str, str] | None:
    value = os.environ.get("KIT_REGISTRY_AUTH")
    if value and ":" in value:
        user, _, password = value.partition(":")
        return user, password
    return None


def pull(
    store: Store,
    text: str,
    *,
    platform: dict[str, str] | None = None,
    insecure: bool | None = None,
    progress: Progress | None = None,
    on_message: Callable[[str], None] | None = None,
) -> Image:
    """Pull ``text`` (``[HOST/]REPO[:TAG|@DIGEST]``) into the store and tag it."""
    ref = references.parse(text)
    host, repository, tag = ref.remote()
    registry = Registry(host, insecure=insecure)
    say = on_message or (lambda _m: None)
    store.init()
    data, kind, digest = registry.manifest(repository, tag)
    if kind in media.INDEXES:
        index = Index.parse(data, what=f"index of {text}", media_type=kind)
        chosen = select_platform(index, what=f"{text}", wanted=platform)
        say(f"index {digest[:19]}: chose {chosen.digest[:19]} for {_platform_text(chosen)}")
        data, kind, digest = registry.manifest(repository, chosen.digest)
    media.check(kind, media.MANIFESTS, what=f"the manifest of {text}")
    manifest = Manifest.parse(data, what=f"manifest of {text}", media_type=kind)
    added: list[str] = []
    try:
        for desc, what in [(manifest.config, "image config")] + [
            (layer, f"layer {i}") for i, layer in enumerate(manifest.layers)
        ]:
            if store.has_blob(desc.digest):
                continue
            say(f"{what} {desc.digest[:19]} ({desc.size} bytes)")
            with registry.blob(repository, desc.digest) as response:
                stream = _Progress(response, desc, progress)
                store.put_stream(
                    stream,  # type: ignore[arg-type]
                    desc.media_type,
                    expect=desc.digest,
                    size=desc.size,
                    what=f"{what} of {text}",
                )
            added.append(desc.digest)
        manifest_desc = store.put_bytes(data, kind)
        image = Image.load(store, manifest_desc)
        image.unpack(progress)
    except BaseException:
        store.remove_blobs(added)
        raise
    store.tag(ref.name, manifest_desc)
    return Image.load(store, manifest_desc)


def _platform_text(desc: Descriptor) -> str:
    plat = desc.platform or {}
    return "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if k in plat)


class _Progress:
    """Report bytes read from a download."""

    def __init__(self, raw: BinaryIO, desc: Descriptor, progress: Progress | None) -> None:
        self.raw = raw
        self.desc = desc
        self.progress = progress
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.done += len(data)
        if self.progress:
            self.progress(f"blob {self.desc.digest[7:19]}", self.done, self.desc.size)
        return data
