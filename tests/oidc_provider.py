"""A small OpenID Connect provider for the tests, on loopback: what Keycloak, Google or Azure do for `st.login`.

It publishes its discovery document and signing keys, signs the person in at once (no form: the test is about
ModelDeck's side), hands back an authorization code, and trades it for an RS256-signed ID token carrying the
nonce Streamlit sent (signed with joserfc, Authlib's own JOSE library). Streamlit's client (Authlib) checks the
token's signature, issuer, audience, expiry and nonce, as it would against a real provider: a wrong nonce, say,
and nobody is signed in.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID, CLIENT_SECRET = "modeldeck", "test-client-secret"
KEY_ID = "test-key"


@dataclass
class Provider:
    url: str
    email: str
    signed_in: list[str] = field(default_factory=list)  # the e-mails it has issued ID tokens for

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def secrets_toml(self, app_url: str) -> str:
        """The `[auth]` section of `.streamlit/secrets.toml` that points Streamlit at this provider."""
        return (
            "[auth]\n"
            f'redirect_uri = "{app_url}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            f'client_id = "{CLIENT_ID}"\n'
            f'client_secret = "{CLIENT_SECRET}"\n'
            f'server_metadata_url = "{self.metadata_url}"\n'
        )


def _handler(provider: Provider, key: Any) -> type[BaseHTTPRequestHandler]:
    from joserfc import jwt

    codes: dict[str, dict[str, str]] = {}  # authorization code -> what the authorize request carried

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _json(self, body: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": provider.url,
                        "authorization_endpoint": f"{provider.url}/authorize",
                        "token_endpoint": f"{provider.url}/token",
                        "jwks_uri": f"{provider.url}/jwks",
                        "userinfo_endpoint": f"{provider.url}/userinfo",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid", "email", "profile"],
                        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    }
                )
            elif parts.path == "/jwks":
                self._json({"keys": [key.as_dict(private=False)]})
            elif parts.path == "/authorize":
                if query.get("client_id") != CLIENT_ID:
                    self._json({"error": "unauthorized_client"}, 400)
                    return
                code = secrets.token_urlsafe(16)
                codes[code] = query
                back = {"code": code, "state": query.get("state", "")}
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
                self.end_headers()
            elif parts.path == "/userinfo":
                self._json({"sub": "person-1", "email": provider.email, "name": provider.email.split("@")[0]})
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            else:
                client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            asked = codes.pop(form.get("code", ""), None)
            if self.path != "/token" or (client_id, secret) != (CLIENT_ID, CLIENT_SECRET) or asked is None:
                self._json({"error": "invalid_grant"}, 400)
                return
            now = int(time.time())
            claims = {
                "iss": provider.url,
                "sub": "person-1",
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 600,
                "email": provider.email,
                "email_verified": True,
                "name": provider.email.split("@")[0],
                "nonce": asked.get("nonce", ""),
            }
            token = jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)
            provider.signed_in.append(provider.email)
            self._json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": token})

    return Handler


@contextlib.contextmanager
def running(port: int, *, email: str) -> Iterator[Provider]:
    """The provider on 127.0.0.1:`port`, signing everyone in as `email`, for the duration of the block."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})
    provider = Provider(url=f"http://127.0.0.1:{port}", email=email)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(provider, key))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
