"""Users, roles, API tokens and login throttling, in the history's database (issue 14).

Everything lives in tables beside the history (same engine, same table prefix: `<prefix>users`,
`<prefix>api_tokens`, `<prefix>login_failures`), so several web workers see the same accounts, the
same revocations and the same lockouts. Nothing here knows about Flask or Dash: app/auth.py is the
web side.

- Passwords: hashlib.scrypt (memory-hard, RFC 7914) with n=2**15, r=8, p=1 (32 MiB, about 0.1 s per
  hash), a 16-byte random salt per password; the parameters travel inside the stored hash so they
  can be raised later. A password is never stored, returned or logged.
- API tokens: `gem_<id>_<secret>`; the secret (32 random bytes) is shown once, only its SHA-256 is
  kept. `<id>` (8 hex digits) names the token in lists and for revocation. A token acts with its
  owner's current role; removing the owner or revoking the token ends it at once.
- Throttling: each failed login is a row (user name and client address); `MAX_FAILURES` failures
  of a name, or `MAX_FAILURES_PER_ADDRESS` of an address, within `LOCKOUT_WINDOW_S` lock further
  attempts of that name or address until the window passes. A success clears the name's failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from services.history import HistoryStore
from services.history.schema import UTCDateTime, utc_now

ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
TOKEN_PREFIX = "gem_"
TOKEN_PATTERN = re.compile(r"^gem_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024

MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 20
LOCKOUT_WINDOW_S = 15 * 60


class AccountError(ValueError):
    """A bad account request (unknown role, taken name, weak password); the message says why."""


def check_role(role: object) -> str:
    if not isinstance(role, str) or role.strip().lower() not in _RANK:
        raise AccountError(f"unknown role {str(role)[:20]!r}: choose among {', '.join(ROLES)}")
    return role.strip().lower()


def role_allows(role: str | None, needed: str) -> bool:
    """Whether `role` may do what `needed` may (admin > operator > viewer)."""
    return role in _RANK and _RANK[role] >= _RANK[needed]


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name.strip()):
        raise AccountError("a user name is 1 to 64 letters, digits or _ . @ - (starting with a letter or digit)")
    return name.strip()


def hash_password(password: str) -> str:
    """'scrypt$n$r$p$salt$hash' (base64); AccountError for a password too short or too long."""
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AccountError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM, dklen=32)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode()[:4 * MAX_PASSWORD_CHARS], salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


#: verified against when the user does not exist, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    """Who a request acts for: a name and a role."""

    name: str
    role: str

    def can(self, needed: str) -> bool:
        return role_allows(self.role, needed)


def build_tables(metadata: MetaData, prefix: str = "") -> tuple[Table, Table, Table]:
    users = Table(
        f"{prefix}users", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("role", String(16), nullable=False),
        Column("password_hash", String(200), nullable=False),
        Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    )
    tokens = Table(
        f"{prefix}api_tokens", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("token_id", String(8), nullable=False, unique=True),
        Column("digest", String(64), nullable=False, unique=True),
        Column("owner", String(64), nullable=False),
        Column("label", String(64), nullable=True),
        Column("created_at", UTCDateTime, nullable=False, default=utc_now),
        Column("last_used_at", UTCDateTime, nullable=True),
        Column("revoked_at", UTCDateTime, nullable=True),
    )
    failures = Table(
        f"{prefix}login_failures", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_name", String(64), nullable=False),
        Column("address", String(64), nullable=False),
        Column("at", UTCDateTime, nullable=False, default=utc_now),
    )
    Index(f"ix_{prefix}login_failures_user", failures.c.user_name, failures.c.at)
    Index(f"ix_{prefix}login_failures_address", failures.c.address, failures.c.at)
    return users, tokens, failures


class AccountStore:
    """Users, tokens and login failures in the history's database (see the module docstring)."""

    def __init__(self, history: HistoryStore) -> None:
        self.engine = history.engine
        self.metadata = MetaData()
        self.users, self.tokens, self.failures = build_tables(
            self.metadata, history.table.name.removesuffix("analyses"))
        self._created = False

    def _ready(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine, checkfirst=True)
            self._created = True

    def drop(self) -> None:
        self.metadata.drop_all(self.engine, checkfirst=True)

    # users -------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> User:
        name, role = check_name(name), check_role(role)
        password_hash = hash_password(password)
        self._ready()
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(self.users).values(name=name, role=role, password_hash=password_hash))
        except IntegrityError:
            raise AccountError(f"user {name} exists already") from None
        return User(name, role)

    def set_role(self, name: str, role: str) -> bool:
        role = check_role(role)
        self._ready()
        with self.engine.begin() as connection:
            return connection.execute(update(self.users).where(self.users.c.name == name).values(role=role)).rowcount > 0

    def remove_user(self, name: str) -> bool:
        """Remove a user and revoke their tokens; False if there was no such user."""
        self._ready()
        with self.engine.begin() as connection:
            removed = connection.execute(delete(self.users).where(self.users.c.name == name)).rowcount
            connection.execute(update(self.tokens).where(self.tokens.c.owner == name,
                                                         self.tokens.c.revoked_at.is_(None)).values(revoked_at=utc_now()))
        return removed > 0

    def get_user(self, name: str) -> User | None:
        self._ready()
        with self.engine.connect() as connection:
            row = connection.execute(select(self.users.c.name, self.users.c.role)
                                     .where(self.users.c.name == name)).first()
        return User(row.name, row.role) if row else None

    def list_users(self) -> list[dict[str, Any]]:
        self._ready()
        with self.engine.connect() as connection:
            rows = connection.execute(select(self.users.c.name, self.users.c.role, self.users.c.created_at)
                                      .order_by(self.users.c.name)).mappings().all()
        return [dict(row) for row in rows]

    def count_users(self) -> int:
        self._ready()
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.users)).scalar_one())

    # login and throttling ------------------------------------------------------------------------
    def locked(self, name: str, address: str) -> bool:
        """Whether logins for `name` or from `address` are locked by recent failures."""
        self._ready()
        since = utc_now() - timedelta(seconds=LOCKOUT_WINDOW_S)
        with self.engine.connect() as connection:
            by_name = connection.execute(select(func.count()).select_from(self.failures).where(
                self.failures.c.user_name == name[:64], self.failures.c.at >= since)).scalar_one()
            by_address = connection.execute(select(func.count()).select_from(self.failures).where(
                self.failures.c.address == address[:64], self.failures.c.at >= since)).scalar_one()
        return by_name >= MAX_FAILURES or by_address >= MAX_FAILURES_PER_ADDRESS

    def authenticate(self, name: str, password: str, address: str) -> User | None:
        """The user if the name and password match and neither is locked; a failure is recorded."""
        self._ready()
        name, address = str(name)[:64], str(address)[:64]
        if self.locked(name, address):
            return None
        with self.engine.connect() as connection:
            row = connection.execute(select(self.users.c.name, self.users.c.role, self.users.c.password_hash)
                                     .where(self.users.c.name == name)).first()
        good = verify_password(password, row.password_hash if row else _DUMMY_HASH) and row is not None
        with self.engine.begin() as connection:
            if good:
                connection.execute(delete(self.failures).where(self.failures.c.user_name == name))
            else:
                connection.execute(insert(self.failures).values(user_name=name, address=address))
                connection.execute(delete(self.failures).where(
                    self.failures.c.at < utc_now() - timedelta(seconds=2 * LOCKOUT_WINDOW_S)))
        return User(row.name, row.role) if good else None

    # tokens ------------------------------------------------------------------------------------
    def create_token(self, owner: str, label: str | None = None) -> tuple[str, str]:
        """(token id, the token): the token is returned this once and never again."""
        self._ready()
        if self.get_user(owner) is None:
            raise AccountError(f"no user {str(owner)[:64]}: add the user first")
        for _ in range(5):
            token_id = secrets.token_hex(4)
            token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(self.tokens).values(
                        token_id=token_id, digest=token_digest(token), owner=owner,
                        label=(label or "")[:64] or None))
                return token_id, token
            except IntegrityError:
                continue
        raise AccountError("could not create a token; try again")

    def revoke_token(self, token_id: str) -> bool:
        self._ready()
        with self.engine.begin() as connection:
            return connection.execute(update(self.tokens).where(
                self.tokens.c.token_id == str(token_id).strip().lower(),
                self.tokens.c.revoked_at.is_(None)).values(revoked_at=utc_now())).rowcount > 0

    def list_tokens(self, owner: str | None = None) -> list[dict[str, Any]]:
        self._ready()
        query = select(self.tokens.c.token_id, self.tokens.c.owner, self.tokens.c.label, self.tokens.c.created_at,
                       self.tokens.c.last_used_at, self.tokens.c.revoked_at).order_by(self.tokens.c.id)
        if owner is not None:
            query = query.where(self.tokens.c.owner == owner)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings().all()]

    def user_for_token(self, token: str) -> User | None:
        """The owner of a valid, unrevoked token (with the owner's current role), or None."""
        if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
            return None
        self._ready()
        table = self.tokens
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table.c.id, table.c.last_used_at, self.users.c.name, self.users.c.role)
                .join(self.users, self.users.c.name == table.c.owner)
                .where(table.c.digest == token_digest(token), table.c.revoked_at.is_(None))).first()
        if row is None:
            return None
        now = utc_now()
        last = row.last_used_at
        if last is None or (now - _aware(last)).total_seconds() > 60:  # one write a minute at most
            with self.engine.begin() as connection:
                connection.execute(update(table).where(table.c.id == row.id).values(last_used_at=now))
        return User(row.name, row.role)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)
