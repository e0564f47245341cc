"""Masking personal data in quoted text (issue 13 item 16): phone and ID numbers however they
are written, landlines, addresses with sections, Chinese numerals and building names. The
table is docs/statement.md's; the property covers every written form in random Chinese text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.outputs import privacy
from ledger.outputs.privacy import mask_text

from conftest import n_examples

FULL = str.maketrans("0123456789()-X", "０１２３４５６７８９（）－Ｘ")

# (text, masked): the examples of docs/statement.md
EXAMPLES = [
    ("我的电话13812345678", "我的电话138****5678"),
    ("电话 138-1234-5678 谢谢", "电话 138****5678 谢谢"),
    ("+86 138 1234 5678", "+86138****5678"),
    ("手机１３８１２３４５６７８", "手机138****5678"),
    ("手机：138　1234　5678", "手机：138****5678"),
    ("2024-05-10 13812345678", "2024-05-10 138****5678"),
    ("身份证11010119900307123X", "身份证**************123X"),
    ("身份证 330106 19900101 1234", "身份证 **************1234"),
    ("身份证３３０１０６１９９００１０１１２３４", "身份证**************1234"),
    ("座机0571-87654321", "座机0571-****4321"),
    ("座机(0571)87654321", "座机0571-****4321"),
    ("座机（０５７１）８７６５４３２１", "座机0571-****4321"),
    ("座机 010 1234 5678", "座机 010-****5678"),
    ("浙江省杭州市西湖区文三路123号4幢501室，收件人", "浙江省杭州市西湖区****，收件人"),
    ("成都市武侯区人民南路四段27号", "成都市武侯区****"),
    ("杭州市文三路一二三号", "杭州市****"),
    ("杭州市文三路123号华星大厦5楼", "杭州市****"),
    ("我住3栋2单元501室", "我住****"),
    ("光明小区3栋2单元401", "****"),
]


@pytest.mark.parametrize("text, masked", EXAMPLES)
def test_the_documented_examples(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", ["订单号 3921839218391", "订单 3700000000019496799", "一共3件，29.9元",
                                  "2024-05-03 12:34:56 至 12:40:00", "在5楼等你", "5分钟内回复"])
def test_ordinary_text_stays(text):
    assert mask_text(text) == text


def _digits(text: str) -> str:
    return "".join(c for c in text.translate(str.maketrans("０１２３４５６７８９Ｘ", "0123456789X")) if c.isdigit() or c == "X")


@st.composite
def personal_numbers(draw):
    """(a phone or ID number as digits, as written in a chat)."""
    kind = draw(st.sampled_from(["mobile", "id", "landline"]))
    if kind == "mobile":
        digits = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
        cuts = draw(st.sampled_from([(), (3, 7), (3,), (7,)]))
        prefix = draw(st.sampled_from(["", "+86 ", "86", "0086 ", "+86-"]))
    elif kind == "id":
        digits = draw(st.from_regex(r"[1-9][0-9]{16}[0-9X]", fullmatch=True))
        cuts = draw(st.sampled_from([(), (6, 14), (6,), (14,)]))
        prefix = ""
    else:
        area = draw(st.sampled_from(["010", "021", "0571", "0755", "0898"]))
        local = draw(st.from_regex(r"[2-9][0-9]{7}" if len(area) == 3 else r"[2-9][0-9]{6,7}", fullmatch=True))
        digits = area + local
        cuts = draw(st.sampled_from([(), (len(area),), (len(area), len(area) + 4)]))
        prefix = ""
    separator = draw(st.sampled_from([" ", "-", "　", " - "]))
    parts, last = [], 0
    for cut in cuts:
        parts.append(digits[last:cut])
        last = cut
    parts.append(digits[last:])
    written = separator.join(parts)
    if kind == "landline" and cuts and draw(st.booleans()):
        written = f"({parts[0]})" + separator.join(parts[1:])
    written = prefix + written
    if draw(st.booleans()):
        written = written.translate(FULL)  # full-width, as Chinese input methods type them
    return digits, written


_CHINESE = st.text(st.sampled_from("亲您好的请问在吗我电话号码是身份证收货人手机，。：！"), max_size=12)


@settings(max_examples=n_examples(300), deadline=None)
@given(before=_CHINESE, number=personal_numbers(), after=_CHINESE)
def test_any_phone_or_id_in_any_written_form_is_masked(before, number, after):
    digits, written = number
    masked = mask_text(before + written + after)
    assert digits not in _digits(masked)  # the whole number never survives, in any form
    assert digits[-4:] in _digits(masked)  # the masked form is there: the last 4 stay
    assert masked.startswith(before) and masked.endswith(after)  # the words around it stay


_RUN_ALPHABET = "0123456789０１２３４５６７８９ -()（）－　XxＸｘ路号a:，"


@settings(max_examples=n_examples(300), deadline=None)
@given(st.text(alphabet=_RUN_ALPHABET, max_size=60))
def test_long_runs_finds_what_the_run_pattern_finds(text):
    pattern = re.compile(privacy._LONG_RUN.pattern)  # the runs as one finditer finds them
    assert [m.span() for m in privacy.long_runs(text)] == [m.span() for m in pattern.finditer(text)]


_PIECE_ALPHABET = _RUN_ALPHABET + "；;杭州市西湖区文三路栋单元室省（）"


@settings(max_examples=n_examples(300), deadline=None)
@given(st.lists(st.text(alphabet=_PIECE_ALPHABET, max_size=30), max_size=5))
def test_masking_piece_by_piece_is_masking_the_whole_text(pieces):
    text = "；".join(pieces)
    assert mask_text(text) == privacy._mask.__wrapped__(text)
