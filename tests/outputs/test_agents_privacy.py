"""Per-agent statements hold only that agent's data; no workbook shows a buyer's phone
number, ID number or address (privacy.py, agents.py)."""

from __future__ import annotations

import html
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import n_examples, write_events
from ledger.cli import main
from ledger.outputs.privacy import mask_text
from ledger.outputs.workbook.cells import decode_text

REPO = Path(__file__).resolve().parents[2]
WANG, LI, MEI = "初晴旗舰店:小王", "初晴旗舰店:小李", "初晴旗舰店:小美"
PHONE, ID_NO, STREET = "13812345678", "110101199003071234", "文三路123号"


def xml_text(path: Path) -> str:
    """Every XML part of a workbook, raw, plus the decoded text of its cells."""
    with zipfile.ZipFile(path) as zf:
        raw = "\n".join(zf.read(n).decode("utf-8") for n in zf.namelist())
    cells = [decode_text(html.unescape(t)) for t in re.findall(r"<t[^>]*>(.*?)</t>", raw, re.S)]
    return raw + "\n" + "\n".join(cells)


# ------------------------------------------------------------------ masking

@pytest.mark.parametrize("text, hidden, shown", [
    ("我的电话13812345678", PHONE, "138****5678"),
    ("电话 138-1234-5678 谢谢", "1234-5678", "138****5678"),
    ("+86 138 1234 5678", "1234 5678", "138****5678"),
    ("身份证110101199003071234", ID_NO, "**************1234"),
    ("身份证11010119900307123X", "11010119900307123X", "123X"),
    ("座机0571-88886666", "88886666", "0571-****6666"),
    ("浙江省杭州市西湖区文三路123号4幢501室，收件人", STREET, "浙江省杭州市西湖区****，收件人"),
    ("光明小区3栋2单元401", "3栋2单元", "****"),
])
def test_mask_text_hides_personal_data(text, hidden, shown):
    masked = mask_text(text)
    assert hidden not in masked
    assert shown in masked


@pytest.mark.parametrize("text", ["你好在吗", "一共3件，29.9元", "订单号 3921839218391", "", None,
                                  "5分钟内回复", "2024-05-01 发货"])
def test_mask_text_leaves_ordinary_text(text):
    assert mask_text(text) == text


# ------------------------------------------------------- a small month, run

def _events():
    m = lambda i, ts, conv, agent, buyer, sender, text, kind="text": {
        "id": f"m{i}", "ts": f"2024-05-10 {ts}", "type": "message", "agent": agent,
        "conversation": conv, "buyer": buyer, "sender": sender, "kind": kind, "text": text}
    return [
        m(1, "10:00:00", "c1", WANG, "tb_alpha", "buyer", "在吗，我要退货"),
        # 顶撞买家 (insult) + honorific rules: excerpt names a colleague and holds PII
        m(2, "10:00:30", "c1", WANG, "tb_alpha", "agent",
          f"滚，找小李去，或打{PHONE}，身份证{ID_NO}，寄到杭州市西湖区{STREET}"),
        m(3, "11:00:00", "c2", LI, "tb_beta", "buyer", "这个有货吗"),
        m(4, "11:00:20", "c2", LI, "tb_beta", "agent", "嗯"),
        m(5, "12:00:00", "c3", MEI, "tb_gamma", "buyer", "发什么快递"),
        m(6, "12:00:20", "c3", MEI, "tb_gamma", "agent", "亲，默认中通快递哦，您放心"),
        {"id": "q1", "ts": "2024-05-11 09:00:00", "type": "qa_flag", "agent": LI, "conversation": "c2",
         "category": "顶撞买家", "note": f"对tb_beta说话难听，小王也在场，买家电话{PHONE}"},
    ]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("agents")
    write_events(_events(), root / "events" / "2024-05")
    code = main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                 "--events", str(root / "events"), "--out", str(root / "reports")])
    assert code == 0
    return root / "reports" / "2024-05"


def test_one_file_per_agent_with_a_safe_name(small_run):
    names = sorted(p.name for p in (small_run / "agents").iterdir())
    assert names == sorted(["初晴旗舰店_小王.xlsx", "初晴旗舰店_小李.xlsx", "初晴旗舰店_小美.xlsx"])


def test_buyer_and_conversation_are_masked_but_not_the_order():
    from datetime import datetime
    from ledger.core.entries import Entry
    from ledger.outputs.privacy import mask_entry
    e = Entry("E1", "r", "r", "p:1", "fine", WANG, datetime(2024, 5, 1), None, "pending", "m1", 1,
              conversation="13812345678@20240501100000", order="3921839218391234567", buyer="13812345678",
              excerpt="加我 13812345678")
    m = mask_entry(e)
    assert (m.buyer, m.conversation, m.order) == ("138****5678", "138****5678@20240501100000", e.order)
    assert m.excerpt == "加我 138****5678"


def test_no_workbook_shows_a_phone_id_or_address(small_run):
    books = [small_run / "ledger-2024-05.xlsx", *sorted((small_run / "agents").glob("*.xlsx"))]
    assert len(books) == 4
    for book in books:
        text = xml_text(book)
        for secret in (PHONE, ID_NO, STREET):
            assert secret not in text, (book.name, secret)
    # the masked form is there, so the line was not simply dropped
    assert "138****5678" in xml_text(small_run / "agents" / "初晴旗舰店_小王.xlsx")


def _detail(path: Path) -> list[dict]:
    rows = list(openpyxl.load_workbook(path)["明细"].iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def test_agent_file_holds_only_that_agents_data(small_run):
    shop = _detail(small_run / "ledger-2024-05.xlsx")
    accounts = {WANG, LI, MEI}
    assert {r["客服"] for r in shop} == accounts
    buyers = {"tb_alpha": WANG, "tb_beta": LI, "tb_gamma": MEI}
    for agent in accounts:
        path = small_run / "agents" / (agent.replace(":", "_") + ".xlsx")
        text = xml_text(path)
        mine = [r for r in shop if r["客服"] == agent]
        theirs = [r for r in shop if r["客服"] != agent]
        assert mine and theirs
        assert [r["编号"] for r in _detail(path)] == [r["编号"] for r in mine]
        for other in accounts - {agent}:
            assert other not in text
            assert other.split(":")[1] not in text  # not even the sub-account name
        for buyer, owner in buyers.items():
            assert (buyer in text) == (owner == agent), (agent, buyer)
        for r in theirs:
            assert r["编号"] not in text
            assert r["触发事件"] not in text
        # totals: this agent's applied lines, as in the shop statement
        summary = list(openpyxl.load_workbook(path)["汇总"].iter_rows(values_only=True))
        assert [row[0] for row in summary[1:]] == [agent, "合计"]
        fines = sum(Decimal(str(r["金额"])) for r in mine if r["金额"] is not None)
        assert Decimal(str(summary[1][1])) == fines


def test_colleague_named_in_own_excerpt_is_replaced(small_run):
    wang = _detail(small_run / "agents" / "初晴旗舰店_小王.xlsx")
    insult = [r for r in wang if r["规则"] == "顶撞买家"]
    assert insult and "找（其他客服）去" in insult[0]["摘录"]
    li = _detail(small_run / "agents" / "初晴旗舰店_小李.xlsx")
    qa = [r for r in li if r["规则"] == "顶撞买家_质检"]
    assert qa and "（其他客服）也在场" in qa[0]["摘录"] and "tb_beta" in qa[0]["摘录"]
    # the shop statement (for supervisors) keeps the names; only PII is masked
    shop = _detail(small_run / "ledger-2024-05.xlsx")
    assert any("找小李去" in (r["摘录"] or "") for r in shop)


def test_stale_agent_files_are_removed(tmp_path):
    write_events(_events()[:2], tmp_path / "events" / "2024-05")
    out = tmp_path / "reports"
    stale = out / "2024-05" / "agents" / "初晴旗舰店_离职.xlsx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    assert main(["run", "--month", "2024-05", "--events", str(tmp_path / "events"),
                 "--policy", str(REPO / "policy"), "--out", str(out)]) == 0
    assert sorted(p.name for p in stale.parent.iterdir()) == ["初晴旗舰店_小王.xlsx"]


def test_sample_month_agent_files_never_name_a_colleague(tmp_path):
    out = tmp_path / "reports"
    assert main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                 "--events", str(REPO / "events"), "--out", str(out)]) == 0
    folder = out / "2024-05"
    shop = _detail(folder / "ledger-2024-05.xlsx")
    accounts = {r["客服"] for r in shop}
    files = sorted((folder / "agents").glob("*.xlsx"))
    assert len(files) == len(accounts) == 10
    for path in files:
        text = xml_text(path)
        agent = next(a for a in accounts if a.replace(":", "_") + ".xlsx" == path.name)
        others = accounts - {agent}
        assert not [o for o in others if o in text or o.split(":")[1] in text]
        own_ids = {r["编号"] for r in shop if r["客服"] == agent}
        assert {r["编号"] for r in _detail(path)} == own_ids
        assert not [r["编号"] for r in shop if r["客服"] != agent and r["编号"] in text]


def test_agent_files_are_byte_identical_across_runs(tmp_path):
    outs = []
    for n in (1, 2):
        write_events(_events(), tmp_path / f"e{n}" / "2024-05")
        out = tmp_path / f"r{n}"
        assert main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                     "--events", str(tmp_path / f"e{n}"), "--out", str(out)]) == 0
        outs.append({p.name: p.read_bytes() for p in (out / "2024-05" / "agents").iterdir()})
    assert outs[0] == outs[1]


from hypothesis import given, settings, strategies as st

_NO_DIGITS = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=30)


@settings(max_examples=n_examples(200), deadline=None)
@given(prefix=_NO_DIGITS, suffix=_NO_DIGITS,
       phone=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
       sep=st.sampled_from(["", " ", "-"]))
def test_no_mobile_number_survives_masking(prefix, suffix, phone, sep):
    written = f"{phone[:3]}{sep}{phone[3:7]}{sep}{phone[7:]}"
    masked = mask_text(prefix + written + suffix)
    assert phone not in masked.replace(" ", "").replace("-", "")
    assert f"{phone[:3]}****{phone[7:]}" in masked


@settings(max_examples=n_examples(300), deadline=None)
@given(names=st.sets(st.text(alphabet="ab店:小王tb1.*", min_size=1, max_size=5), min_size=1, max_size=8),
       text=st.text(alphabet="ab店:小王tb1.*x，", max_size=30))
def test_name_finder_finds_what_the_longest_first_alternation_finds(names, text):
    """The redactor's automaton matches exactly like the plain alternation of the names,
    longest first (the leftmost place, then the longest name there, no overlaps)."""
    import re

    from ledger.outputs.agents import NameFinder

    plain = re.compile("|".join(map(re.escape, sorted(names, key=lambda n: (-len(n), n)))))
    assert [(start, name) for start, _, name in NameFinder(names).find(text)] == \
        [(m.start(), m.group()) for m in plain.finditer(text)]


def test_agent_files_written_by_forked_workers_are_the_same_bytes(tmp_path, monkeypatch):
    """A big team's files are written by one process per core: same files, same bytes."""
    import hashlib

    from ledger.outputs import agents

    def run(out):
        assert main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                     "--events", str(REPO / "events"), "--out", str(out)]) == 0
        folder = out / "2024-05" / "agents"
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    serial = run(tmp_path / "serial")
    monkeypatch.setenv(agents.WORKERS_ENV, "3")  # forks even for 10 agents
    forked = run(tmp_path / "forked")
    assert len(serial) == 10 and forked == serial


@given(st.text(alphabet="0123456789０１２ -+Xx:年月号路室楼栋abc", max_size=40))
@settings(max_examples=n_examples(300), deadline=None)
def test_number_prefilter_never_changes_the_masking(text):
    """_mask skips the numbers with fewer than 10 digits and the addresses without an
    address word: applying both anyway must give the same text."""
    from ledger.outputs import privacy

    always = privacy._ADDRESS.sub(privacy._mask_address, privacy._mask_numbers(text))
    assert privacy._mask(text) == always
