"""Every query of OIDC sign-in (providers and identity links). Takes the session, never
commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.identity.oidc_models import OidcIdentity, OidcProvider


class OidcRepository:
    def provider(self, session: Session, provider_id: uuid.UUID) -> OidcProvider | None:
        return session.get(OidcProvider, provider_id)

    def provider_of(self, session: Session, organization_id: uuid.UUID) -> OidcProvider | None:
        return session.scalar(
            select(OidcProvider).where(OidcProvider.organization_id == organization_id)
        )

    def enabled_providers(self, session: Session) -> list[tuple[uuid.UUID, str]]:
        rows = session.execute(
            select(OidcProvider.id, OidcProvider.display_name)
            .where(OidcProvider.enabled.is_(True))
            .order_by(OidcProvider.display_name, OidcProvider.id)
        ).all()
        return [(row[0], row[1]) for row in rows]

    def link(self, session: Session, issuer: str, subject: str) -> OidcIdentity | None:
        return session.scalar(
            select(OidcIdentity).where(
                OidcIdentity.issuer == issuer, OidcIdentity.subject == subject
            )
        )

    def link_of_user(
        self, session: Session, user_id: uuid.UUID, provider_id: uuid.UUID
    ) -> OidcIdentity | None:
        return session.scalar(
            select(OidcIdentity).where(
                OidcIdentity.user_id == user_id, OidcIdentity.provider_id == provider_id
            )
        )


oidc_repository = OidcRepository()
