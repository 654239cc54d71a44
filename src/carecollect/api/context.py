"""What every request handler needs: settings, database, keys, identity policy, metrics.

One `AppContext` per application, stored on `app.state.context`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy.orm import Session

from carecollect.api.metrics import Metrics
from carecollect.api.throttle import LoginThrottle
from carecollect.config import Settings
from carecollect.db import Database
from carecollect.identity.service import IdentityPolicy
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.tenant.models import Organization


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    settings: Settings
    db: Database
    keys: KeyManager
    policy: IdentityPolicy
    metrics: Metrics
    throttle: LoginThrottle
    clock: Callable[[], datetime] = _utcnow
    # Secure cookies everywhere except plain-HTTP development on loopback, where browsers
    # would drop them (documented in docs/WEB.md); production requires TLS (config.py).
    cookie_secure: bool = True
    _bits: dict[uuid.UUID, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        return self.clock()

    @property
    def secret(self) -> bytes:
        return self.settings.session_secret.get_secret_value().encode("utf-8")

    def sign(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of `value` for `purpose` under the session secret (CSRF tokens)."""
        message = f"{purpose}:{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    @contextmanager
    def session(self, organization_id: uuid.UUID | None) -> Iterator[Session]:
        """The request's transaction: tenant-scoped (or system when None); commits on
        success, rolls back on error.

        On SQLite it begins with `BEGIN IMMEDIATE`: nearly every request writes (an audit
        event, a session touch), and a deferred transaction that read first and writes
        later fails at once with SQLITE_BUSY_SNAPSHOT when another writer committed in
        between (WAL mode); waiting for the write lock up front uses the busy timeout
        instead. PostgreSQL needs nothing of the kind.
        """
        if self.db.is_postgres:
            factory = (
                self.db.tenant_session(organization_id)
                if organization_id is not None
                else self.db.system_session()
            )
            with factory as session:
                yield session
            return
        connection = self.db.engine.connect()
        connection.info["sqlite_begin"] = "BEGIN IMMEDIATE"
        session = Session(bind=connection, expire_on_commit=False)
        session.info["organization_id"] = organization_id
        session.info["app_role"] = None
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            connection.info.pop("sqlite_begin", None)
            connection.close()

    def org_keys(self, session: Session, organization_id: uuid.UUID) -> OrganizationKeys:
        """The organization's keys with its recorded blind-index width."""
        with self._lock:
            bits = self._bits.get(organization_id)
        if bits is None:
            org = session.get(Organization, organization_id)
            bits = org.blind_index_bits if org is not None else self.keys.blind_index_bits
            with self._lock:
                self._bits[organization_id] = bits
        return self.keys.for_organization(session, organization_id, blind_index_bits=bits)


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context
