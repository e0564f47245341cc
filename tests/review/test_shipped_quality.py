"""The shipped house policy on the labelled chats of policy/quality/ (docs/quality.md).

`holdout/` was written by people who never saw the policy (h2, h3) or before the tuning it
measures (h4), and nobody tuned the policy on its disagreements: every chat rule must keep at
least 90% precision and 90% recall there.
`tune/` is what the policy was tuned on: it must not fall back below 90% either.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ledger.lang.load import checked_policy
from ledger.review import labelled, quality

REPO = Path(__file__).resolve().parents[2]
MINIMUM = Decimal(90)
CHAT_RULES = ["敬语", "短语回复", "回复超时", "缺货直答", "顶撞买家", "未再次询问"]
# Known shortfalls on the held-out chats, measured and reported (docs/quality.md): open work,
# strict so that an improvement is noticed and the mark removed. None today (顶撞买家 reached
# 90% on the held-out chats when it was rewritten for unseen phrasings).
SHORT_ON_HOLDOUT: set[tuple[str, str]] = set()


def scores(folder: str) -> dict[str, quality.RuleScore]:
    policy, sources = checked_policy([REPO / "policy"])
    conversations, problems = labelled.load([REPO / "policy" / "quality" / folder])
    assert problems == [] and quality.unknown_labels(policy, conversations) == []
    assert len(conversations) >= 150
    return {r.rule: r for r in quality.score(policy, sources, conversations).rules}


@pytest.fixture(scope="module")
def holdout():
    return scores("holdout")


@pytest.fixture(scope="module")
def tune():
    return scores("tune")


def _params(short: set):
    return [pytest.param(rule, measure, marks=pytest.mark.xfail(strict=True, reason="known shortfall, docs/quality.md")
                         if (rule, measure) in short else ())
            for rule in CHAT_RULES for measure in ("precision", "recall")]


@pytest.mark.parametrize("rule, measure", _params(SHORT_ON_HOLDOUT))
def test_held_out_chats(holdout, rule, measure):
    value = getattr(holdout[rule], measure)
    assert value is not None and value >= MINIMUM, f"{rule} {measure} {value}% on held-out chats"


@pytest.mark.parametrize("rule, measure", _params(set()))
def test_tuning_chats(tune, rule, measure):
    value = getattr(tune[rule], measure)
    assert value is not None and value >= MINIMUM, f"{rule} {measure} {value}% on the tuning chats"
