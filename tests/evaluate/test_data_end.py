"""Issue 13 item 4: an implausible timestamp never decides what is pending."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.evaluate import engine

REPO = Path(__file__).resolve().parents[2]
POLICY = [REPO / "policy"]
WANG = "初晴旗舰店:小王"


def _run(folder: Path, extra: list[dict]):
    folder.mkdir(parents=True, exist_ok=True)
    events = [{"id": "r1", "ts": "2024-05-31 20:00:00", "type": "refund_requested", "order": "O1", "buyer": "b",
               "agent": WANG, "reason": "拍错了", "amount": "10"},
              {"id": "m1", "ts": "2024-05-31 20:10:00", "type": "status"}, *extra]
    (folder / "e.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), "utf-8")
    return engine.run_month(POLICY, folder, "2024-05")


def test_a_typo_year_does_not_turn_pending_lines_into_fines(tmp_path):
    plain = _run(tmp_path / "a", [])
    statuses = {e.status for e in plain.entries if e.rule_id == "退款超时"}
    assert statuses == {"pending"}
    typo = _run(tmp_path / "b", [{"id": "t", "ts": "2204-06-01 10:00:00", "type": "status"}])
    assert {e.status for e in typo.entries if e.rule_id == "退款超时"} == statuses
    assert typo.data_end == plain.data_end
    (warning,) = [w for w in typo.warnings if "implausibly late" in w]
    assert "2204-06-01 10:00:00" in warning and "e.jsonl:3" in warning


def test_events_within_the_horizon_still_end_the_data(tmp_path):
    later = _run(tmp_path / "c", [{"id": "t", "ts": "2024-06-20 10:00:00", "type": "status"}])
    assert {e.status for e in later.entries if e.rule_id == "退款超时"} == {"applied"}
    assert not [w for w in later.warnings if "implausibly late" in w]
