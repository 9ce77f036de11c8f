"""API keys: created, listed and revoked by the CLI; checked on every API request.

A key is a random token shown once at creation (``av_<43 url-safe chars>``); the database keeps only its
SHA-256, so a leaked database does not leak keys. Requests send it as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>`` (WebSocket clients may use ``?api_key=``). Keys are required when the server binds a
non-loopback address, optional on loopback, unless ``Settings.require_api_key`` says otherwise.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from autovoice.errors import NotFoundError, ParameterError
from autovoice.service.errors import AuthError
from autovoice.storage import ApiKeyRow, Database
from autovoice.storage.tables import utcnow

if TYPE_CHECKING:
    from autovoice.config import Settings

TOKEN_PREFIX = "av_"  # nosec B105 # the public prefix of every key, not a secret
# Write `last_used_at` at most this often per key, so auth does not turn every read into a write.
_TOUCH_INTERVAL_S = 60.0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _key_doc(row: ApiKeyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked": row.revoked_at is not None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "note": row.note,
    }


def create_api_key(db: Database, name: str, *, note: str = "") -> tuple[dict[str, Any], str]:
    """Create a key; returns its public record and the secret token (shown once, never stored)."""
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ParameterError("invalid_parameter", "An API key name must be 1-128 characters.", {"name": name})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=f"key_{uuid.uuid4().hex[:12]}",
        name=name,
        prefix=token[:10],
        token_sha256=_hash(token),
        created_at=utcnow(),
        note=note,
    )
    with db.session() as s:
        s.add(row)
        s.flush()
        return _key_doc(row), token


def list_api_keys(db: Database, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    """All keys (never their tokens), oldest first."""
    with db.session() as s:
        q = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            q = q.where(ApiKeyRow.revoked_at.is_(None))
        return [_key_doc(r) for r in s.scalars(q).all()]


def revoke_api_key(db: Database, ref: str) -> dict[str, Any]:
    """Revoke the key with id (or unique name) ``ref``; requests with it fail from now on."""
    with db.session() as s:
        row = s.get(ApiKeyRow, ref)
        if row is None:
            rows = s.scalars(select(ApiKeyRow).where(ApiKeyRow.name == ref)).all()
            if len(rows) > 1:
                raise ParameterError(
                    "ambiguous_api_key", f"Several keys are named '{ref}'; revoke by id.", {"key": ref}
                )
            row = rows[0] if rows else None
        if row is None:
            raise NotFoundError("api_key_not_found", f"No API key '{ref}'.", {"key": ref})
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _key_doc(row)


def api_key_required(settings: Settings, host: str | None) -> bool:
    """Keys are required on a non-loopback bind address unless ``require_api_key`` says otherwise
    (``host`` ``None``: the default bind address, which is loopback)."""
    if settings.require_api_key is not None:
        return settings.require_api_key
    return host is not None and not is_loopback(host)


def token_from_headers(headers: Any, query: Any = None) -> str | None:
    """The key sent with a request: ``Authorization: Bearer``, ``X-API-Key`` or (WebSocket) ``api_key``.

    Every place a key is sent counts: two different keys in one request (a good bearer token and a wrong
    ``X-API-Key``, say) are refused with ``conflicting_api_keys`` rather than one of them being ignored.
    """
    sent: list[str] = []
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            sent.append(value.strip())
    key = headers.get("x-api-key")
    if key and key.strip():
        sent.append(key.strip())
    if query is not None and query.get("api_key"):
        sent.append(str(query.get("api_key")))
    if len(set(sent)) > 1:
        raise AuthError(
            "conflicting_api_keys",
            "The request carries two different API keys (Authorization, X-API-Key or api_key); send one.",
        )
    return str(sent[0]) if sent else None


class ApiKeyAuth:
    """Checks request keys against the database.

    Parameters
    ----------
    db
        Where the hashed keys are.
    required
        Reject requests without a key (``api_key_required``). A key that is sent is always checked.
    """

    def __init__(self, db: Database, *, required: bool) -> None:
        self.db = db
        self.required = required
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> str | None:
        """The key id for ``token``; ``None`` when none was sent and none is required."""
        if token is None:
            if self.required:
                raise AuthError(
                    "api_key_required",
                    "This server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'. "
                    "Create one with `autovoice apikey create NAME`.",
                )
            return None
        digest = _hash(token)
        with self.db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.token_sha256 == digest))
            if row is None or row.revoked_at is not None:
                raise AuthError(
                    "invalid_api_key", "The API key is unknown or revoked.", {"prefix": token[:10]}
                )
            key_id = row.id
            now = time.monotonic()
            with self._lock:
                stale = now - self._touched.get(key_id, -_TOUCH_INTERVAL_S) >= _TOUCH_INTERVAL_S
                if stale:
                    self._touched[key_id] = now
            if stale:
                row.last_used_at = utcnow()
        return key_id
