"""A real registry on loopback for the pull tests: Debian's docker-registry behind token auth.

The registry itself is the real one (``docker-registry serve``), configured with
``auth: token`` exactly as Docker Hub's registry is: it answers 401 with a ``Bearer``
challenge, and accepts only JWTs signed by the key whose certificate is in its
``rootcertbundle``. The token service is the small piece tests provide: a Python HTTP server
that signs tokens with ``openssl`` (RS256, the certificate in the ``x5c`` header) for any
scope, pushes only with the right password, and refuses repositories under ``private/``.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVICE = "kit-test-registry"
ISSUER = "kit-test-token-issuer"
USER, PASSWORD = "pusher", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Registry:
    host: str
    token_url: str
    requests: list[str]
    storage: Path

    def push(self, source: str, repo_tag: str, *, all_images: bool = False) -> None:
        """``skopeo copy`` an image into the registry (with the pusher's login)."""
        argv = ["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}"]
        if all_images:
            argv.append("--all")
        result = subprocess.run(
            [*argv, source, f"docker://{self.host}/{repo_tag}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr


class _TokenHandler(BaseHTTPRequestHandler):
    key: Path
    cert_der: bytes
    requests: list[str]

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        scope = (query.get("scope") or [""])[0]
        self.requests.append(scope)
        user = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                self._answer(401, {"details": "wrong password"})
                return
        access = []
        if scope:
            kind, name, actions = scope.split(":")
            if name.startswith("private/"):
                self._answer(403, {"details": f"{name} is private"})
                return
            allowed = [a for a in actions.split(",") if a == "pull" or user == USER]
            access.append({"type": kind, "name": name, "actions": allowed})
        self._answer(200, {"token": self._sign(user, access)})

    def _sign(self, user: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_registry(workdir: Path) -> Iterator[Registry]:
    """Start the token service and the real registry; yield; stop both."""
    workdir.mkdir(parents=True, exist_ok=True)
    key, cert = workdir / "token.key", workdir / "token.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=kit-test-token", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True,
    )  # fmt: skip
    cert_der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    requests: list[str] = []
    handler = type(
        "Handler", (_TokenHandler,), {"key": key, "cert_der": cert_der, "requests": requests}
    )
    tokens = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=tokens.serve_forever, daemon=True)
    thread.start()
    token_url = f"http://127.0.0.1:{tokens.server_address[1]}/token"
    port = free_port()
    storage = workdir / "storage"
    config = workdir / "config.yml"
    config.write_text(
        f"""version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
  token:
    realm: {token_url}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {cert}
"""
    )
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "docker-registry did not start: " + (workdir / "registry.log").read_text()
                    ) from None
                time.sleep(0.05)
        yield Registry(f"127.0.0.1:{port}", token_url, requests, storage)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        tokens.shutdown()
        tokens.server_close()
