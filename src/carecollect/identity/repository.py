"""Every query of the identity domain. Takes the session, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carecollect.identity.models import (
    ApiKey,
    IdempotencyRecord,
    RecoveryCode,
    StaffSession,
    StaffUser,
)
from carecollect.kit.models import utcnow


class IdentityRepository:
    def user(self, session: Session, user_id: uuid.UUID) -> StaffUser | None:
        return session.get(StaffUser, user_id)

    def user_by_email(self, session: Session, email: str) -> StaffUser | None:
        return session.scalar(select(StaffUser).where(StaffUser.email == email))

    def users(self, session: Session, *, after: uuid.UUID | None, limit: int) -> list[StaffUser]:
        query = select(StaffUser).order_by(StaffUser.id).limit(limit)
        if after is not None:
            query = query.where(StaffUser.id > after)
        return list(session.scalars(query))

    def session_by_token_hash(self, session: Session, token_hash: str) -> StaffSession | None:
        return session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash))

    def revoke_user_sessions(self, session: Session, user_id: uuid.UUID, *, reason: str) -> None:
        session.execute(
            update(StaffSession)
            .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoke_reason=reason)
        )

    def delete_recovery_codes(self, session: Session, user_id: uuid.UUID) -> None:
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))

    def add_recovery_codes(self, session: Session, user: StaffUser, hashes: list[str]) -> None:
        session.add_all(
            RecoveryCode(organization_id=user.organization_id, user_id=user.id, code_hash=h)
            for h in hashes
        )
        session.flush()

    def unused_recovery_code(
        self, session: Session, user_id: uuid.UUID, code_hash: str
    ) -> RecoveryCode | None:
        return session.scalar(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
        )

    def api_key(self, session: Session, key_id: uuid.UUID) -> ApiKey | None:
        return session.get(ApiKey, key_id)

    def api_key_by_prefix(self, session: Session, prefix: str) -> ApiKey | None:
        return session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))

    def api_keys(self, session: Session) -> Sequence[ApiKey]:
        return session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())).all()

    def idempotency_record(
        self, session: Session, principal: str, key: str
    ) -> IdempotencyRecord | None:
        return session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
            )
        )

    def purge_idempotency(self, session: Session, *, before: datetime) -> int:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


identity_repository = IdentityRepository()
