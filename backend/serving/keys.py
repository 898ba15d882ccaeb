"""API keys for the inference server: made and revoked by admins, kept as digests, checked on every request.

A key is `mdk_` and 43 URL-safe characters (256 random bits), shown once when it is made; the database keeps
its SHA-256 digest and its first characters, to tell keys apart in a list. A fast hash is right here: a key is
random, not a password a person chose, so nothing is gained by guessing through the digests.

The server asks for a key (`Authorization: Bearer KEY` over REST, the same `authorization` metadata over gRPC)
whenever it listens beyond loopback, or when told to (`modeldeck serve --require-keys`). It reads the live
digests at most once a second, so a revoked key stops working within a second, without a restart.

No TensorFlow here: the CLI uses this module.
"""

from __future__ import annotations

import getpass
import hashlib
import ipaddress
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable

from backend import auth
from backend.errors import BadInput, NotFound
from db import ApiKey, Store

log = logging.getLogger(__name__)
PREFIX = "mdk_"
KEYS_TTL_SECONDS = 1.0  # how long a revoked key may still be accepted
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,59}")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@auth.guarded("keys", lambda made: f"key {made[0].name}", audited="create_key")
def create(store: Store, name: str, *, created_by: str | None = None) -> tuple[ApiKey, str]:
    """Make a key: its record, and the key itself (shown once: only its digest is kept).

    Raises:
        BadInput: the name is empty, too long or has odd characters, or a key (live or revoked) already has it.
    """
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise BadInput("error.keys.bad_name", name=name[:60])
    key = PREFIX + secrets.token_urlsafe(32)
    made = store.add_api_key(name=name, prefix=key[:8], digest=digest(key), created_by=created_by or getpass.getuser())
    if made is None:
        raise BadInput("error.keys.name_taken", name=name)
    return made, key


@auth.guarded("keys", lambda key: f"key {key.name}", audited="revoke_key")
def revoke(store: Store, name: str) -> ApiKey:
    """Revoke a key by name: the server refuses it within a second.

    Raises:
        NotFound: no key has this name.
    """
    revoked = store.revoke_api_key(name.strip())
    if revoked is None:
        raise NotFound("error.keys.no_key", name=name)
    return revoked


def listing(store: Store) -> list[ApiKey]:
    """Every key, live and revoked, oldest first: names, first characters, who made them, when (never the keys).

    Raises:
        Forbidden: the current actor is not an admin.
    """
    auth.check("keys")
    return store.api_keys()


def loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`): nothing outside the machine can reach it there."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def required(host: str, asked: bool | None) -> bool:
    """Whether a server on `host` asks for keys: as told (`--[no-]require-keys`), else beyond loopback only."""
    return asked if asked is not None else not loopback(host)


def bearer(header: str | None) -> str | None:
    """The key in an `Authorization: Bearer KEY` header (any case of "Bearer"), or None."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class KeyCheck:
    """The live keys as the server checks them: their digests, re-read at most once per TTL.

    The store opens on first use. A database that cannot be read keeps the digests last read (none at first):
    a server that cannot read its keys refuses rather than lets everyone in.
    """

    def __init__(self, open_store: Callable[[], Store], ttl_seconds: float = KEYS_TTL_SECONDS) -> None:
        self._open_store = open_store
        self._store: Store | None = None
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._digests: set[str] = set()
        self._read_at = float("-inf")

    def _live(self) -> set[str]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._ttl:
                self._read_at = time.monotonic()
                try:
                    if self._store is None:
                        self._store = self._open_store()
                    self._digests = self._store.live_key_digests()
                except Exception as exc:  # locked or away: keep the keys last read, try again after the TTL
                    log.warning("could not read the API keys (%s: %s); using the last read", type(exc).__name__, exc)
            return self._digests

    def allows(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries a live key."""
        key = bearer(header)
        return key is not None and digest(key) in self._live()

    def count(self) -> int:
        return len(self._live())

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
