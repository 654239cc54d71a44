"""Derived facts about one proposed event, computed once and shared by every rule.

Nothing here decides anything: it resolves zones (PLAT-TZ-RESOLVE), the consent and
revocation timeline of a contact point (TCPA-RECONSENT: the latest event wins), medium
opt-outs (REGF-MEDIUM-OPTOUT) and the counting primitives of PLAT-ATTEMPT-VS-CONVERSATION.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from carecollect.compliance import zones as tz
from carecollect.compliance.businessdays import add_business_days
from carecollect.compliance.scenario import ContactPoint, Context, HistoryEvent
from carecollect.compliance.textsignals import Signals, classify_text

if TYPE_CHECKING:
    from carecollect.compliance.overlay import OrgOverlay

DAY = dt.timedelta(days=1)
PHONE_CHANNELS = frozenset({"call", "sms", "voicemail"})
CALL_CHANNELS = frozenset({"call", "voicemail"})
AUTOMATED_DIALERS = frozenset({"autodialer", "prerecorded", None})
CONVERSATION = "conversation_rpc"
NEUTRAL_TAGS = frozenset({"neutral_notice", "practice_name_neutral", "lcm_required_only",
                          "lcm_plus_optional", "patient_first_name"})
ALL_MEDIA = frozenset({"sms", "call", "email", "letter"})


def medium_of(channel: str) -> str:
    return "call" if channel in CALL_CHANNELS else channel


def media_of_revocation(channel: str) -> frozenset[str]:
    c = channel.strip().lower()
    if c in {"sms", "text", "texts", "mms"}:
        return frozenset({"sms"})
    if c in {"call", "calls", "phone", "voice", "voicemail", "telephone"}:
        return frozenset({"call"})
    if c in {"email", "e-mail"}:
        return frozenset({"email"})
    if c in {"letter", "mail", "postal"}:
        return frozenset({"letter"})
    # "all", "any" and anything unrecognised: every medium (fail closed).
    return ALL_MEDIA


class Grant:
    __slots__ = ("at", "kind", "source")

    def __init__(self, at: dt.datetime, kind: str, source: str) -> None:
        self.at, self.kind, self.source = at, kind, source


class Revoke:
    __slots__ = ("at", "media", "source")

    def __init__(self, at: dt.datetime, media: frozenset[str], source: str) -> None:
        self.at, self.media, self.source = at, media, source


class Facts:
    """Per-evaluation view of a Context. Cheap to build; heavier parts are lazy."""

    def __init__(self, ctx: Context, overlay: OrgOverlay | None = None,
                 when: dt.datetime | None = None,
                 zones: tuple[str, ...] | None = None) -> None:
        """`when` evaluates the same action at another instant (as_of moves by the same
        delta), as engine.at_time would, without copying the context; `zones` passes the
        candidate zones already resolved for this context (they do not depend on time)."""
        self.ctx = ctx
        self.overlay = overlay
        action = ctx.proposed_action
        self.action = action
        content = action.content
        self.content = content
        self.tags = frozenset(content.contains)
        if when is None:
            self.t = t = action.time
            self.as_of = as_of = ctx.as_of
        else:
            self.t = t = when
            self.as_of = as_of = ctx.as_of + (when - action.time)
        self.on = as_of.date()
        self.channel = channel = action.channel
        self.profile = profile = ctx.policy_profile
        self.strict = profile == "strict"
        creditor = ctx.creditor
        # Reg F binds third parties and creditors using a third-party-sounding name
        # (15 USC 1692a(6); RULES.md §1).
        self.collector = creditor.type == "third_party" or creditor.name_indicates_debt_collection
        self.state = ctx.debtor.state.upper()
        self.cp: ContactPoint | None = None
        wanted = action.contact_point
        for cp in ctx.contact_points:
            if cp.id == wanted:
                self.cp = cp
                break
        self.debt_ids = action.debt_ids or ctx.debt.debt_ids
        self.primary_zone = ctx.debtor.mailing_tz
        history = ctx.contact_history
        self.history = tuple([e for e in history if e.at < t]) if history else ()
        self.is_phone = channel in PHONE_CHANNELS
        self.automated = channel == "sms" or (
            channel in CALL_CHANNELS and action.dialer in AUTOMATED_DIALERS)
        self._zones: tuple[str, ...] | None = zones
        self._signals: dict[int, Signals] = {}
        # Per-evaluation memo: several rules ask the same questions (window, TCPA state).
        self.memo: dict[object, object] = {}

    # ---- zones -------------------------------------------------------------------------
    @property
    def zones(self) -> tuple[str, ...]:
        """Candidate zones, primary (mailing) first (PLAT-TZ-RESOLVE)."""
        if self._zones is None:
            self._zones = candidate_zones(self.ctx, self.cp, self.is_phone)
        return self._zones

    def local_date(self, instant: dt.datetime, zone: str) -> dt.date:
        return tz.local_date(instant, zone)

    # ---- inbound text signals ----------------------------------------------------------
    def signals(self, event: HistoryEvent) -> Signals:
        key = id(event)
        got = self._signals.get(key)
        if got is None:
            got = classify_text(event.text) if event.text else Signals()
            self._signals[key] = got
        return got

    def _revokes_by_text(self, sig: Signals) -> bool:
        # Strict treats ambiguous free text as a revocation (RULES.md TCPA-REVOKE-ANYMEANS).
        return sig.revocation or (self.strict and sig.ambiguous)

    # ---- TCPA consent timeline ---------------------------------------------------------
    def tcpa_timeline(self, cp_id: str) -> tuple[list[Grant], list[Revoke]]:
        grants = [Grant(c.granted_at, c.kind, "consent") for c in self.ctx.consents
                  if c.contact_point == cp_id and c.kind in ("tcpa_pec", "tcpa_pewc")
                  and c.granted_at <= self.t]
        revokes: list[Revoke] = []
        for r in self.ctx.revocations:
            if (r.contact_point in (cp_id, None)) and r.received_at <= self.t:
                media = media_of_revocation(r.channel)
                if media & {"sms", "call"}:
                    revokes.append(Revoke(r.received_at, media, "revocation"))
        for e in self.history:
            if e.direction != "inbound" or e.contact_point != cp_id or not e.text:
                continue
            sig = self.signals(e)
            if sig.start:
                grants.append(Grant(e.at, "tcpa_pec", "start_keyword"))
            elif self._revokes_by_text(sig):
                revokes.append(Revoke(e.at, frozenset({medium_of(e.channel)}), sig.source))
        return grants, revokes

    def tcpa_state(self, cp_id: str, *, written: bool = False
                   ) -> tuple[Grant | None, Revoke | None]:
        key = ("tcpa", cp_id, written)
        got = self.memo.get(key)
        if got is None:
            got = self._tcpa_state(cp_id, written=written)
            self.memo[key] = got
        return got  # type: ignore[return-value]

    def _tcpa_state(self, cp_id: str, *, written: bool = False
                    ) -> tuple[Grant | None, Revoke | None]:
        """(latest live grant, effective revocation after it) for a contact point.

        TCPA-RECONSENT: the latest event wins; a tie goes to the revocation (fail closed).
        In `legal_minimum` a revocation binds only after 10 business days (TCPA-REVOKE-10BD);
        `strict` honors it at once (PLAT-HONOR-IMMEDIATELY).
        """
        grants, revokes = self.tcpa_timeline(cp_id)
        if written:
            grants = [g for g in grants if g.kind == "tcpa_pewc"]
        last_grant = max(grants, key=lambda g: g.at, default=None)
        effective = [r for r in revokes if self._revocation_binds(r.at)]
        last_revoke = max(effective, key=lambda r: r.at, default=None)
        if last_grant is None:
            return None, last_revoke
        if last_revoke is not None and last_revoke.at >= last_grant.at:
            return None, last_revoke
        return last_grant, None

    def _revocation_binds(self, received_at: dt.datetime) -> bool:
        if self.strict:
            return True
        received = tz.local_date(received_at, self.primary_zone)
        limit = add_business_days(received, 10)
        return self.local_date(self.t, self.primary_zone) >= limit

    # ---- medium opt-outs (REGF-MEDIUM-OPTOUT) --------------------------------------------
    def medium_optouts(self, cp_id: str | None, medium: str) -> list[Revoke]:
        out: list[Revoke] = []
        for r in self.ctx.revocations:
            if r.contact_point in (cp_id, None) and r.received_at <= self.t:
                media = media_of_revocation(r.channel)
                if medium in media:
                    out.append(Revoke(r.received_at, media, "revocation"))
        for e in self.history:
            if e.direction == "inbound" and e.contact_point == cp_id and e.text and \
                    medium_of(e.channel) == medium:
                sig = self.signals(e)
                if sig.medium_optout or self._revokes_by_text(sig):
                    out.append(Revoke(e.at, frozenset({medium}), sig.source))
        cease = self.ctx.flags.cease_requested
        if cease is not None and not cease.in_writing and cease.received_at <= self.t:
            media = media_of_revocation(cease.scope)
            if medium in media and media != ALL_MEDIA:
                out.append(Revoke(cease.received_at, media, "oral_cease"))
        if not out:
            return out
        # A later consent for that address lifts the opt-out (TCPA-RECONSENT).
        lift_kinds = {"email": ("email_use", "esign")}.get(medium, ("tcpa_pec", "tcpa_pewc"))
        lifted_at = max((c.granted_at for c in self.ctx.consents
                         if c.contact_point == cp_id and c.kind in lift_kinds
                         and c.granted_at <= self.t), default=None)
        if medium != "email" and cp_id is not None:
            starts = [e.at for e in self.history if e.direction == "inbound"
                      and e.contact_point == cp_id and e.text and self.signals(e).start]
            if starts:
                lifted_at = max([*starts, *([lifted_at] if lifted_at else [])])
        if lifted_at is None:
            return out
        return [r for r in out if r.at >= lifted_at]

    def consumer_initiated_reply(self, medium: str, since: dt.datetime | None,
                                 within: dt.timedelta | None) -> bool:
        """One response is allowed after the consumer contacts us on that medium/address."""
        cp_id = self.action.contact_point
        inbound = [e.at for e in self.history if e.direction == "inbound"
                   and e.contact_point == cp_id and medium_of(e.channel) == medium
                   and (since is None or e.at > since)]
        if not inbound:
            return False
        last_in = max(inbound)
        if within is not None and self.t - last_in > within:
            return False
        return not any(e.direction == "outbound" and e.contact_point == cp_id
                       and medium_of(e.channel) == medium and e.at > last_in
                       for e in self.history)

    # ---- consents ------------------------------------------------------------------------
    def has_consent(self, kinds: Iterable[str], cp_id: str | None,
                    given_to: str | None = None) -> bool:
        kinds = tuple(kinds)
        return any(c.kind in kinds and c.contact_point in (cp_id, None)
                   and c.granted_at <= self.t and (given_to is None or c.given_to == given_to)
                   for c in self.ctx.consents)

    def about_debt(self, event: HistoryEvent, debt_id: str) -> bool:
        # A history event without debt ids is taken to concern every debt (fail closed).
        return not event.debt_ids or debt_id in event.debt_ids

    def conveys_debt(self) -> bool:
        return bool(self.tags - NEUTRAL_TAGS)


def candidate_zones(ctx: Context, cp: ContactPoint | None, phone: bool) -> tuple[str, ...]:
    debtor = ctx.debtor
    with_phone = phone and cp is not None and cp.type == "phone"
    return _candidate_zones(debtor.mailing_tz, debtor.zip, tuple(debtor.other_known_tz),
                            cp.area_code_tz if with_phone and cp is not None else None,
                            cp.value if with_phone and cp is not None else None)


@functools.lru_cache(maxsize=16384)
def _candidate_zones(mailing_tz: str, zip_code: str, other_known_tz: tuple[str, ...],
                     area_code_tz: str | None, phone_value: str | None) -> tuple[str, ...]:
    # Cached: a portfolio repeats few (address, phone) combinations, and the ZIP and area
    # code look-ups are the costly part of a context's set-up.
    zones = [mailing_tz]
    zip_zone = tz.zip_zone(zip_code)
    if zip_zone:
        zones.append(zip_zone)
    zones.extend(other_known_tz)
    if area_code_tz:
        zones.append(area_code_tz)
    elif phone_value is not None:
        zones.extend(tz.phone_zones(phone_value))
    seen: dict[str, None] = {}
    for z in zones:
        seen.setdefault(z, None)
    return tuple(seen)
