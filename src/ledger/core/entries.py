"""Ledger entries: what a rule charged (or will charge) to whom, and why."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

import attrs

FINE = "fine"
BONUS = "bonus"

APPLIED = "applied"  # the outcome is known and the amount counts
PENDING = "pending"  # the deadline lies beyond the end of the data: no amount yet
TO_CONFIRM = "to_confirm"  # a judgement call (a rule marked `confirm`): shown as 待复核 with the amount
                           # it would charge, counted nowhere until a person confirms it

NO_AGENT = "（未指定客服）"  # who is charged when an event names no agent (never dropped)


@attrs.frozen
class Entry:
    """One line of the statement.

    `amount` is positive for both fines and bonuses (the kind says which way it goes)
    and None while pending. `ts` is the trigger event's local wall time in the
    policy's zone. `id` is stable: the same inputs always give the same id.
    """

    id: str
    rule_id: str
    rule_title: str
    rule_location: str  # "policy/house-rules.rules:42"
    kind: str  # FINE | BONUS
    agent: str  # who is charged / paid
    ts: datetime
    amount: Decimal | None
    status: str  # APPLIED | PENDING | TO_CONFIRM
    event_id: str  # the trigger event
    event_seq: int  # input order of the trigger, for stable sorting
    conversation: str | None = None
    order: str | None = None
    buyer: str | None = None
    excerpt: str | None = None  # the text that triggered it (message text, reason, note)
    evidence: str = ""  # what was searched and what was (not) found, in Chinese
    origin: str | None = None  # a 上月更正 line: the corrected entry, "2024-05/E042B9E906020"
    points: int | None = None  # platform points (扣分) this line records; never money
    owed: Decimal | None = None  # before a cap: what the rule charged (None: no cap touched it)
    cap_note: str = ""  # why less than owed was applied (the cap or floor that bit)

    @property
    def signed_amount(self) -> Decimal | None:
        """Amount as it moves the agent's net pay: fines negative, bonuses positive."""
        if self.amount is None:
            return None
        return -self.amount if self.kind == FINE else self.amount


def sort_key(entry: Entry) -> tuple:
    """Stable order everywhere: time, then input order, then rule, then recipient."""
    return (entry.ts, entry.event_seq, entry.rule_location, entry.rule_id, entry.agent)


def entry_id(rule_id: str, event_id: str, recipient: str) -> str:
    """A stable id: the same rule, event and recipient always give the same id."""
    digest = hashlib.sha256(f"{rule_id}\x1f{event_id}\x1f{recipient}".encode()).hexdigest()
    return "E" + digest[:12].upper()


# Account names are compared as normalised text everywhere (events, roster, adjust lines):
# the spaces around them, zero-width characters inside them and a full-width colon
# (店：小王) are what copying between Excel, chat tools and IMEs adds.
ACCOUNT_SPACES = " \t\r\n\x0b\x0c\u00a0\u3000"
ACCOUNT_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def normalise_account(text: str) -> str:
    """'店：小王\u200b ' → '店:小王': the one form an account is compared in."""
    for ch in ACCOUNT_INVISIBLE:
        if ch in text:
            text = text.replace(ch, "")
    return text.strip(ACCOUNT_SPACES).replace("：", ":")
