"""Who may do what: local accounts and their sessions, three roles, and an audit log of every change.

Roles, each allowed what the one before it is:
- viewer: use cases, the playground, evaluation (reading, and predicting through the server);
- editor: upload, fix and label data, train, choose thresholds, make use cases, export;
- admin: accounts, API keys, promotion to a stage, deletion.

The services check the role themselves (`check`), so the dashboard hiding a button is a courtesy, not the lock.
Whoever is acting is a context variable, set by each face: the dashboard for the signed-in account of a browser
session (`acting_as`), the CLI for the machine's user. Nothing set means the machine's user, as an admin: the
command line, and a dashboard on loopback with sign-in off, act for whoever can already read the files.

Passwords are kept as scrypt hashes (memory-hard: 16 MiB and about 50 ms a guess); a session is a random token
whose SHA-256 digest is stored, valid for `SESSION_HOURS`. A failed sign-in says the same whatever was wrong.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import getpass
import hashlib
import hmac
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from backend.errors import BadInput, Forbidden, NotFound
from db import AuditEntry, Store, User

ROLES = ("viewer", "editor", "admin")
SESSION_HOURS = 12
MIN_PASSWORD = 10
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB per hash: a GPU cannot try billions of guesses a second
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,59}")

# The lowest role that may do each action: one table, read by `check`.
PERMISSIONS = {
    "view": "viewer",
    "predict": "viewer",
    "upload": "editor",
    "fix": "editor",
    "label": "editor",
    "train": "editor",
    "decide": "editor",
    "use_case": "editor",
    "name": "editor",
    "export": "editor",
    "promote": "admin",
    "keys": "admin",
    "users": "admin",
    "delete": "admin",
    "audit": "admin",
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: an account's name and role, and where from ("dashboard 10.0.0.7", "cli ana@host")."""

    name: str
    role: str
    source: str

    def may(self, action: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(PERMISSIONS[action])


def local_actor() -> Actor:
    """The machine's user, as an admin: the command line, or a dashboard on loopback with sign-in off."""
    user = getpass.getuser()
    return Actor(name=user, role="admin", source=f"local {user}@{socket.gethostname()}")


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("modeldeck_actor", default=None)
_session_actor: Callable[[], Actor | None] | None = None  # the dashboard's: the browser session's account


def actor_from(provider: Callable[[], Actor | None]) -> None:
    """Where the actor comes from when `acting_as` set none: the dashboard gives its browser session's account.

    The dashboard's code runs in many script runs (a page, a fragment refreshing every second), not all of which
    pass through the code that could set a context variable: it asks the session instead, every time.
    """
    global _session_actor
    _session_actor = provider


def current() -> Actor:
    return _actor.get() or (_session_actor() if _session_actor is not None else None) or local_actor()


def sign_in_required() -> bool:
    """Whether the dashboard asks who you are: MODELDECK_SIGN_IN=1 (`modeldeck ui` sets it beyond loopback)."""
    return os.environ.get("MODELDECK_SIGN_IN", "") not in ("", "0")


def account_role(store: Store, name: str) -> str | None:
    """The role of the enabled account with this name (an identity provider's e-mail, say), or None."""
    found = store.credentials(name)
    return found[0].role if found else None


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Everything called inside acts as `actor` (its role is checked, its name goes in the audit log)."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def check(action: str) -> Actor:
    """The current actor, if its role may do `action`.

    Raises:
        Forbidden: it may not; the message names the role needed.
    """
    actor = current()
    if not actor.may(action):
        raise Forbidden("error.auth.forbidden", name=actor.name, role=actor.role, needed=PERMISSIONS[action])
    return actor


def audit(store: Store, action: str, target: str, **detail: Any) -> None:
    """Record a change made by the current actor (after it succeeded: the log says what happened)."""
    actor = current()
    store.add_audit(actor=actor.name, role=actor.role, action=action, target=target, source=actor.source, detail=detail)


_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("modeldeck_guarded", default=False)
F = TypeVar("F", bound=Callable[..., Any])


def guarded(action: str, target: Callable[[Any], str], *, audited: str | None = None) -> Callable[[F], F]:
    """A service that only a role allowed `action` may call, and that the audit log records when it succeeds.

    The decorated function takes the store first. `target` names what changed, from the function's result. A
    guarded service that calls another records one entry: the outer one.
    """

    def wrap(function: F) -> F:
        @functools.wraps(function)
        def guard(store: Store, *args: Any, **kwargs: Any) -> Any:
            check(action)
            if _inside.get():
                return function(store, *args, **kwargs)
            token = _inside.set(True)
            try:
                result = function(store, *args, **kwargs)
            finally:
                _inside.reset(token)
            audit(store, audited or function.__name__, target(result))
            return result

        return guard  # type: ignore[return-value]

    return wrap


def log(store: Store, *, limit: int = 1000, offset: int = 0) -> list[AuditEntry]:
    """The audit log, the latest first (admins only).

    Raises:
        Forbidden: the current actor is not an admin.
    """
    check("audit")
    return store.audit_log(limit=limit, offset=offset)


def log_csv(store: Store) -> bytes:
    """The whole audit log as CSV (admins only), the latest first."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["at", "actor", "role", "action", "target", "source", "detail"])
    offset = 0
    while page := log(store, limit=5000, offset=offset):
        for e in page:
            writer.writerow([e.at.isoformat(sep=" "), e.actor, e.role, e.action, e.target, e.source, e.detail])
        offset += len(page)
    return buffer.getvalue().encode()


# -- passwords -------------------------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt)}${b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        assert scheme == "scrypt"
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, AssertionError):
        return False
    return hmac.compare_digest(found, expected)


# -- accounts --------------------------------------------------------------------------------------------------
def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput("error.auth.bad_role", role=role, roles=", ".join(ROLES))
    return role


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput("error.auth.short_password", least=MIN_PASSWORD)
    return password


def add_user(store: Store, name: str, *, role: str, password: str) -> User:
    """A new local account (admins only).

    Raises:
        Forbidden: the current actor is not an admin.
        BadInput: a bad or taken name, an unknown role, or a password shorter than `MIN_PASSWORD`.
    """
    check("users")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise BadInput("error.auth.bad_name", name=name[:60])
    made = store.add_user(name=name, role=_checked_role(role), password_hash=hash_password(_checked_password(password)))
    if made is None:
        raise BadInput("error.auth.name_taken", name=name)
    audit(store, "add_user", name, role=role)
    return made


def _change(store: Store, name: str, action: str, **values: Any) -> User:
    """Change an account (admins only), and record it.

    Raises:
        Forbidden: the current actor is not an admin.
        NotFound: no account has this name.
    """
    check("users")
    changed = store.update_user(name, **values)
    if changed is None:
        raise NotFound("error.auth.no_user", name=name)
    audit(store, action, name, **{k: v for k, v in values.items() if k == "role"})
    return changed


def set_role(store: Store, name: str, role: str) -> User:
    check("users")  # before the role is read: a viewer is told no, not that the role is unknown
    return _change(store, name, "set_role", role=_checked_role(role))


def set_password(store: Store, name: str, password: str) -> User:
    """A new password (admins only); the account's sessions end."""
    check("users")  # before the password is hashed
    return _change(store, name, "set_password", password_hash=hash_password(_checked_password(password)))


def disable(store: Store, name: str) -> User:
    """Disable an account (admins only): it can no longer sign in, and its sessions end. Its history stays."""
    return _change(store, name, "disable_user", disabled_at=datetime.now(UTC).replace(tzinfo=None))


def users(store: Store) -> list[User]:
    check("users")
    return store.users()


def has_accounts(store: Store) -> bool:
    return bool(store.users())


# -- signing in ------------------------------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(store: Store, name: str, password: str, *, source: str) -> tuple[str, Actor]:
    """A session for a local account: its token (the browser keeps it) and the actor it stands for.

    Raises:
        BadInput: no enabled account has this name and password (one message either way).
    """
    found = store.credentials(name.strip())
    stored = found[1] if found else hash_password("a password nobody has")  # as slow as a real check
    if found is None or not password_matches(password, stored):
        with acting_as(Actor(name=name.strip()[:60] or "?", role="-", source=source)):  # no role: not signed in
            audit(store, "sign_in_failed", name.strip()[:60])
        raise BadInput("error.auth.wrong")
    user = found[0]
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=SESSION_HOURS)
    store.add_session(user.id, token_digest=_digest(token), expires_at=expires)
    actor = Actor(name=user.name, role=user.role, source=source)
    with acting_as(actor):
        audit(store, "sign_in", user.name)
    return token, actor


def session_actor(store: Store, token: str | None, *, source: str) -> Actor | None:
    """The actor a session token stands for, if the session is live and its account enabled."""
    user = store.session_user(_digest(token)) if token else None
    return None if user is None else Actor(name=user.name, role=user.role, source=source)


def sign_out(store: Store, token: str) -> None:
    store.end_session(_digest(token))
