"""Identity rules: passwords, TOTP and recovery codes, lockout, sessions, API keys and
break-glass access. Functions take the session first and never commit.

Passwords follow NIST SP 800-63B section 5.1.1.2: a minimum length, a generous maximum,
any characters, no composition rules, no periodic expiry, and a check against a list of
common and context-specific passwords. Hashes are Argon2id (RFC 9106) via argon2-cffi.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import AppError, BadInput, Forbidden, NotFound
from carecollect.identity.models import ApiKey, BreakGlassGrant, StaffSession, StaffUser
from carecollect.identity.permissions import (
    BREAK_GLASS_PERMISSIONS,
    Permission,
    Role,
    parse_scopes,
    permissions_for,
)
from carecollect.identity.repository import identity_repository
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7

log = structlog.get_logger("carecollect.identity")

# Argon2id, RFC 9106 second recommended option (64 MiB, t=3, p=4) is argon2-cffi's default.
_hasher = PasswordHasher()
# Verifying against this hash when the e-mail is unknown keeps the response time the same
# for unknown and known users (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
# NIST SP 800-63B 5.1.1.2: reject passwords from breach corpora, dictionary words,
# repetitive or sequential characters and context-specific words. A short list ships
# with the package; deployments may extend it.
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password123", "123456789012", "qwertyuiop", "letmein",
        "iloveyou", "welcome", "admin", "administrator", "changeme", "passw0rd",
        "qwerty123456", "111111111111", "000000000000", "abc123abc123", "monkey",
        "dragon", "football", "baseball", "sunshine", "princess", "trustno1",
        "correcthorsebatterystaple", "carecollect", "collections", "dentist",
    }
)
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "carecollect"


class LoginFailed(AppError):  # noqa: N818 - reads as the event
    """Generic on purpose: the message never tells which of e-mail or password was wrong."""

    status_code = 401


class AccountLocked(AppError):  # noqa: N818 - reads as the event
    status_code = 423


@dataclass(frozen=True)
class IdentityPolicy:
    """Session and lockout policy (HIPAA 164.312(a)(2)(iii) automatic logoff)."""

    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=12)
    mfa_pending_timeout: timedelta = timedelta(minutes=5)
    lockout_threshold: int = 5
    lockout_duration: timedelta = timedelta(minutes=15)
    break_glass_duration: timedelta = timedelta(minutes=30)
    # last_seen_at is written at most this often (idle timeout granularity).
    touch_interval: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a staff session or an API key, with its permissions."""

    kind: Literal["staff", "api_key"]
    id: uuid.UUID
    organization_id: uuid.UUID
    permissions: frozenset[Permission]
    role: str | None = None
    session_id: uuid.UUID | None = None
    display_name: str = ""
    break_glass_until: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor.staff(self.id) if self.kind == "staff" else Actor.api_key(self.id)

    @property
    def break_glass(self) -> bool:
        return self.break_glass_until is not None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            raise Forbidden("you do not have permission for this action")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# Passwords -------------------------------------------------------------------------------


def check_password_policy(password: str, *, email: str = "") -> None:
    """Raise BadInput when the password is too short, too long or too common."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadInput(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    folded = password.casefold()
    local_part = email.split("@", 1)[0].casefold()
    if (
        folded in COMMON_PASSWORDS
        or len(set(folded)) <= 2
        or (len(local_part) >= 4 and local_part in folded)
    ):
        raise BadInput("this password is too common or too easy to guess; choose another")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password for a first login (about 120 bits), shown once."""
    return secrets.token_urlsafe(15)


def _verify_hash(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Users --------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    email: str,
    display_name: str,
    role: str,
    password: str | None = None,
) -> tuple[StaffUser, str]:
    """Create a staff user; return it and its password (generated when not given)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or " " in email:
        raise BadInput("give a valid e-mail address")
    try:
        Role(role)
    except ValueError:
        raise BadInput(f"unknown role {role!r}") from None
    if not display_name.strip() or len(display_name) > 200:
        raise BadInput("give a display name of 1 to 200 characters")
    if identity_repository.user_by_email(session, email) is not None:
        raise BadInput("a user with this e-mail address already exists")
    chosen = password if password is not None else generate_password()
    check_password_policy(chosen, email=email)
    user = StaffUser(
        id=uuid7(),
        organization_id=organization_id,
        email=email,
        display_name=display_name.strip(),
        role=role,
        password_hash=hash_password(chosen),
    )
    session.add(user)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.create",
        subject=Subject("staff_user", user.id, organization_id=organization_id),
        details={"role": role},
    )
    return user, chosen


def change_role(
    session: Session, *, actor: Actor, user: StaffUser, role: str | None, state: str | None
) -> StaffUser:
    """Change a user's role or state; disabling revokes every session of the user."""
    changed: list[str] = []
    if role is not None:
        try:
            Role(role)
        except ValueError:
            raise BadInput(f"unknown role {role!r}") from None
        user.role = role
        changed.append("role")
    if state is not None:
        if state not in ("active", "disabled"):
            raise BadInput("state must be active or disabled")
        user.state = state
        changed.append("state")
        if state == "disabled":
            identity_repository.revoke_user_sessions(session, user.id, reason="disabled")
    session.flush()
    record(
        session,
        actor=actor,
        action="user.update",
        subject=Subject("staff_user", user.id, organization_id=user.organization_id),
        details={"fields": changed, "role": user.role, "state": user.state},
    )
    return user


# TOTP and recovery codes ----------------------------------------------------------------


def start_totp_enrollment(session: Session, *, keys: OrganizationKeys, user: StaffUser) -> str:
    """Store a fresh TOTP secret (sealed, not yet enabled) and return it for display."""
    secret = pyotp.random_base32()
    user.totp_secret = keys.cipher().seal("staff_user", "totp_secret", user.id, secret)
    user.totp_enabled_at = None
    session.flush()
    return secret


def totp_uri(user: StaffUser, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a code matches (±1 step of clock drift, RFC 6238 5.2), or None."""
    totp = pyotp.TOTP(secret)
    clean = code.strip().replace(" ", "")
    if not (clean.isdigit() and len(clean) == 6):
        return None
    base = int(now.timestamp()) // totp.interval
    for step in (base, base - 1, base + 1):
        if hmac.compare_digest(totp.generate_otp(step), clean):
            return step
    return None


def _new_recovery_codes(session: Session, user: StaffUser) -> list[str]:
    identity_repository.delete_recovery_codes(session, user.id)
    codes = [
        f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)
    ]
    identity_repository.add_recovery_codes(
        session, user, [_sha256(c) for c in codes]
    )
    return codes


def confirm_totp(
    session: Session, *, keys: OrganizationKeys, user: StaffUser, code: str, now: datetime
) -> list[str]:
    """Enable TOTP once the user proves their authenticator works; return recovery codes."""
    if user.totp_secret is None:
        raise BadInput("start the authenticator enrollment first")
    secret = keys.cipher().open_row(user, "totp_secret") or ""
    step = _totp_step(secret, code, now)
    if step is None:
        raise BadInput("that code is not valid; check your authenticator's clock and retry")
    user.totp_enabled_at = now
    user.totp_last_step = step
    codes = _new_recovery_codes(session, user)
    record(
        session,
        actor=Actor.staff(user.id),
        action="staff.mfa_enroll",
        subject=Subject("staff_user", user.id, organization_id=user.organization_id),
        details={"recovery_codes": len(codes)},
    )
    return codes


def enroll_totp_secret(
    session: Session, *, keys: OrganizationKeys, user: StaffUser, secret: str, now: datetime
) -> list[str]:
    """Enable TOTP with a known secret (provisioning by `init`, `demo` and tests)."""
    user.totp_secret = keys.cipher().seal("staff_user", "totp_secret", user.id, secret)
    user.totp_enabled_at = now
    session.flush()
    return _new_recovery_codes(session, user)


# Sign-in ------------------------------------------------------------------------------


def _login_event(
    session: Session, user: StaffUser | None, outcome: str, reason: str, **extra: object
) -> None:
    record(
        session,
        actor=Actor.staff(user.id) if user else Actor.system("anonymous"),
        action="staff.login",
        subject=(
            Subject("staff_user", user.id, organization_id=user.organization_id) if user else None
        ),
        outcome=outcome,
        details={"step": reason, **extra},
    )


def authenticate_password(
    session: Session, *, email: str, password: str, now: datetime, policy: IdentityPolicy
) -> StaffUser:
    """First factor. Runs in a system session (the organization is not known yet).

    Lockout (NIST SP 800-63B 5.2.2, rate limiting): after `lockout_threshold` consecutive
    failures the account is locked for `lockout_duration`; the failure is audited.
    """
    user = identity_repository.user_by_email(session, email.strip().lower())
    if user is None:
        _verify_hash(_DUMMY_HASH, password)
        _login_event(session, None, "failure", "password", cause="unknown_user")
        raise LoginFailed("the e-mail address or password is not correct")
    if user.locked_until is not None and user.locked_until > now:
        _login_event(session, user, "denied", "password", cause="locked")
        raise AccountLocked("too many failed sign-ins: the account is locked for a while")
    if user.state != "active":
        _verify_hash(_DUMMY_HASH, password)
        _login_event(session, user, "denied", "password", cause="disabled")
        raise LoginFailed("the e-mail address or password is not correct")
    if not _verify_hash(user.password_hash, password):
        register_failure(session, user=user, now=now, policy=policy, step="password")
        if user.locked_until is not None and user.locked_until > now:
            raise AccountLocked("too many failed sign-ins: the account is locked for a while")
        raise LoginFailed("the e-mail address or password is not correct")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def register_failure(
    session: Session, *, user: StaffUser, now: datetime, policy: IdentityPolicy, step: str
) -> None:
    user.failed_login_count += 1
    locked = user.failed_login_count >= policy.lockout_threshold
    if locked:
        user.locked_until = now + policy.lockout_duration
        user.failed_login_count = 0
        log.warning("security.lockout", user_id=str(user.id))
    session.flush()
    _login_event(session, user, "failure", step, locked=locked)


def verify_second_factor(
    session: Session,
    *,
    keys: OrganizationKeys,
    user: StaffUser,
    code: str,
    now: datetime,
    policy: IdentityPolicy,
) -> str:
    """Second factor: a TOTP code (each time step accepted once) or an unused recovery
    code. Returns the method used; failures count towards lockout."""
    if user.locked_until is not None and user.locked_until > now:
        _login_event(session, user, "denied", "mfa", cause="locked")
        raise AccountLocked("too many failed sign-ins: the account is locked for a while")
    method = ""
    secret = keys.cipher().open_row(user, "totp_secret") if user.totp_secret else None
    step = _totp_step(secret, code, now) if secret else None
    if step is not None and (user.totp_last_step is None or step > user.totp_last_step):
        user.totp_last_step = step
        method = "totp"
    elif "-" in code.strip():
        recovery = identity_repository.unused_recovery_code(
            session, user.id, _sha256(code.strip().lower())
        )
        if recovery is not None:
            recovery.used_at = now
            method = "recovery_code"
    if not method:
        register_failure(session, user=user, now=now, policy=policy, step="mfa")
        if user.locked_until is not None and user.locked_until > now:
            raise AccountLocked("too many failed sign-ins: the account is locked for a while")
        raise LoginFailed("that code is not valid")
    user.failed_login_count = 0
    user.last_login_at = now
    session.flush()
    _login_event(session, user, "success", "mfa", method=method)
    return method


# Sessions -----------------------------------------------------------------------------


def create_session(
    session: Session, *, user: StaffUser, mfa_passed: bool, now: datetime, policy: IdentityPolicy
) -> tuple[StaffSession, str]:
    """A new server-side session; returns it and the cookie value `<org hex>.<token>`.

    A new session (new token) is issued at every privilege change (password accepted,
    second factor accepted), so a token planted before sign-in is worthless (OWASP
    session fixation).
    """
    token = secrets.token_urlsafe(32)
    lifetime = policy.absolute_timeout if mfa_passed else policy.mfa_pending_timeout
    row = StaffSession(
        id=uuid7(),
        organization_id=user.organization_id,
        user_id=user.id,
        token_hash=_sha256(token),
        mfa_passed=mfa_passed,
        created_at=now,
        last_seen_at=now,
        absolute_expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return row, f"{user.organization_id.hex}.{token}"


def split_cookie(value: str) -> tuple[uuid.UUID, str] | None:
    """(organization id, token) of a session cookie, or None when malformed."""
    org_hex, _, token = value.partition(".")
    if len(org_hex) != 32 or not token or len(token) > 100:
        return None
    try:
        return uuid.UUID(hex=org_hex), token
    except ValueError:
        return None


def resolve_session(
    session: Session, *, token: str, now: datetime, policy: IdentityPolicy
) -> tuple[StaffSession, StaffUser] | None:
    """The live session and user for a token (tenant session), or None.

    Idle timeout and absolute timeout end the session server-side (revoked, with the
    reason), so a stolen cookie is useless afterwards too.
    """
    row = identity_repository.session_by_token_hash(session, _sha256(token))
    if row is None or row.revoked_at is not None:
        return None
    if now >= row.absolute_expires_at:
        revoke_session(session, row, reason="absolute_timeout", now=now)
        return None
    if now - row.last_seen_at >= policy.idle_timeout:
        revoke_session(session, row, reason="idle_timeout", now=now)
        return None
    user = identity_repository.user(session, row.user_id)
    if user is None or user.state != "active":
        revoke_session(session, row, reason="user_disabled", now=now)
        return None
    if now - row.last_seen_at >= policy.touch_interval:
        row.last_seen_at = now
    if row.break_glass_until is not None and row.break_glass_until <= now:
        row.break_glass_until = None
    return row, user


def revoke_session(session: Session, row: StaffSession, *, reason: str, now: datetime) -> None:
    row.revoked_at = now
    row.revoke_reason = reason
    session.flush()
    if reason in ("logout", "idle_timeout", "absolute_timeout"):
        record(
            session,
            actor=Actor.staff(row.user_id),
            action="staff.logout",
            subject=Subject("staff_session", row.id, organization_id=row.organization_id),
            details={"cause": reason},
        )


def principal_for(user: StaffUser, row: StaffSession) -> Principal:
    permissions = permissions_for(user.role)
    if row.break_glass_until is not None:
        permissions = permissions | BREAK_GLASS_PERMISSIONS
    return Principal(
        kind="staff",
        id=user.id,
        organization_id=user.organization_id,
        permissions=permissions,
        role=user.role,
        session_id=row.id,
        display_name=user.display_name,
        break_glass_until=row.break_glass_until,
    )


# Break-glass --------------------------------------------------------------------------


def grant_break_glass(
    session: Session,
    *,
    keys: OrganizationKeys,
    principal: Principal,
    staff_session: StaffSession,
    reason: str,
    now: datetime,
    policy: IdentityPolicy,
) -> BreakGlassGrant:
    """Time-limited emergency read access to PHI. The reason is required and sealed (it is
    free text); the grant raises an alert: a `staff.break_glass` audit event flagged
    `alert` and a warning log line for the security monitor."""
    principal.require(Permission.BREAK_GLASS)
    reason = reason.strip()
    if len(reason) < 10 or len(reason) > 1000:
        raise BadInput("give a reason of at least 10 characters for emergency access")
    expires = now + policy.break_glass_duration
    grant_id = uuid7()
    grant = BreakGlassGrant(
        id=grant_id,
        organization_id=principal.organization_id,
        user_id=principal.id,
        session_id=staff_session.id,
        reason=keys.cipher().seal("break_glass_grant", "reason", grant_id, reason),
        granted_at=now,
        expires_at=expires,
    )
    session.add(grant)
    staff_session.break_glass_until = expires
    session.flush()
    record(
        session,
        actor=principal.actor,
        action="staff.break_glass",
        subject=Subject("break_glass_grant", grant_id, organization_id=principal.organization_id),
        details={"alert": True, "minutes": int(policy.break_glass_duration.total_seconds() // 60)},
    )
    log.warning("security.alert.break_glass", user_id=str(principal.id), grant_id=str(grant_id))
    return grant


# API keys -----------------------------------------------------------------------------

API_KEY_PREFIX = "cck"


def create_api_key(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key; the token `cck_<org hex>_<prefix>_<secret>` is returned once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise BadInput("give the key a name of 1 to 100 characters")
    try:
        permissions = parse_scopes(scopes)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid7(),
        organization_id=organization_id,
        name=name,
        prefix=prefix,
        secret_hash=_sha256(secret),
        scopes=sorted(p.value for p in permissions),
        created_by=uuid.UUID(actor.id) if actor.type == "staff" else None,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    record(
        session,
        actor=actor,
        action="api_key.create",
        subject=Subject("api_key", key.id, organization_id=organization_id),
        details={"scopes": key.scopes},
    )
    return key, f"{API_KEY_PREFIX}_{organization_id.hex}_{prefix}_{secret}"


def split_api_token(token: str) -> tuple[uuid.UUID, str, str] | None:
    parts = token.split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 32:
        return None
    try:
        return uuid.UUID(hex=parts[1]), parts[2], parts[3]
    except ValueError:
        return None


def resolve_api_key(
    session: Session, *, prefix: str, secret: str, now: datetime
) -> Principal | None:
    key = identity_repository.api_key_by_prefix(session, prefix)
    if key is None or key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if not hmac.compare_digest(key.secret_hash, _sha256(secret)):
        return None
    if key.last_used_at is None or now - key.last_used_at >= timedelta(minutes=1):
        key.last_used_at = now
    try:
        permissions = parse_scopes(list(key.scopes))
    except ValueError:
        permissions = frozenset()
    return Principal(
        kind="api_key",
        id=key.id,
        organization_id=key.organization_id,
        permissions=permissions,
        display_name=key.name,
    )


def revoke_api_key(session: Session, *, actor: Actor, key_id: uuid.UUID, now: datetime) -> None:
    key = identity_repository.api_key(session, key_id)
    if key is None:
        raise NotFound("no such API key")
    key.revoked_at = now
    session.flush()
    record(
        session,
        actor=actor,
        action="api_key.revoke",
        subject=Subject("api_key", key.id, organization_id=key.organization_id),
    )


def provision_admin(
    session: Session, *, actor: Actor, organization_id: uuid.UUID, email: str
) -> tuple[StaffUser, str]:
    """The first owner of an organization, with a one-time password (used by `init` and
    `demo`). For an existing user the password is replaced, the authenticator is reset
    (set up again at the next sign-in) and every session is revoked."""
    existing = identity_repository.user_by_email(session, email.strip().lower())
    if existing is None:
        return create_user(
            session,
            actor=actor,
            organization_id=organization_id,
            email=email,
            display_name="Administrator",
            role=Role.OWNER.value,
        )
    password = generate_password()
    existing.password_hash = hash_password(password)
    existing.totp_secret = None
    existing.totp_enabled_at = None
    existing.totp_last_step = None
    existing.failed_login_count = 0
    existing.locked_until = None
    existing.state = "active"
    identity_repository.revoke_user_sessions(session, existing.id, reason="password_reset")
    identity_repository.delete_recovery_codes(session, existing.id)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.update",
        subject=Subject("staff_user", existing.id, organization_id=existing.organization_id),
        details={"fields": ["password", "mfa"], "reason": "one_time_admin_login"},
    )
    return existing, password
