"""Masking buyers' personal data in the text a statement quotes.

Leaking a buyer's phone number, ID number or address is itself a violation in the
rulebook (泄露信息), so no workbook may repeat one, even when the agent wrote it in a
chat. `mask_text` masks:

* Numbers, however they are written: ASCII or full-width digits (１３８…), in one run or in
  groups separated by spaces, hyphens or brackets (`138 1234 5678`, `330106 19900101 1234`,
  `(0571)87654321`, `０５７１－８７６５４３２１`). Within a run of such groups, the first
  (leftmost, then longest) groups whose digits together make one of these are masked:
  - an ID number (居民身份证号): 18 digits (the last may be X) or 15 digits. Only the
    last 4 characters stay: `**************123X`;
  - a mobile number: 11 digits starting 1[3-9], optionally after 86 or 0086 (+86). The
    first 3 and the last 4 digits stay (`138****5678`, as Taobao itself shows them);
  - a landline number: 0, an area code, the local number: 10–12 digits in all. The area
    code (3 digits for 01x/02x, else 4) and the last 4 digits stay (`0571-****4321`).
* Street addresses: a road, street, lane, village or estate name (…路, …街, …村, …小区, …大厦)
  followed, after an optional section (四段), by a house, building, unit or room number in
  any digits or Chinese numerals (文三路123号4幢501室, 人民南路四段27号, 文三路一二三号), and
  the building name and numbers after the number (…号华星大厦5楼). Everything from the
  street on is replaced by `****`; the province, city and district before it stay, since
  they say nothing about a person. Building, unit and room numbers without a street
  (3栋2单元501室, 3号楼5层: two numbered parts or more) are masked too.

Masking is deliberately greedy in what it recognises as a number (a 15-digit order id
quoted in a message is masked too): a masked order id costs a look-up, a leaked ID
number cannot be taken back. Text with fewer than 10 digits and no address word is
returned unchanged, fast.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import attrs

MASK = "****"

# Full-width digits, brackets, hyphen, space and X as ASCII: one character for one, so the
# places found in the translated text are the places in the original.
_NARROW = str.maketrans("０１２３４５６７８９（）－　Ｘｘ", "0123456789()- Xx")
# A run: groups of digits separated by at most 3 spaces, hyphens or brackets; a group may
# end in X. In the narrow form (after _NARROW) a group is _GROUP.
_GROUP = re.compile(r"[0-9]+(?:[Xx](?![0-9A-Za-z]))?")
_MIN_DIGITS = 10  # the shortest number masked (a landline) has 10 digits
# Runs are found in the text as written, each class with its full-width forms (what
# _NARROW maps to it: the places are the same), and only the runs found are narrowed.
_D, _X, _SEP = "0-9０-９", "XxＸｘ", " \\-()（）－　"
_WIDE_GROUP = rf"[{_D}]+(?:[{_X}](?![{_D}A-Za-zＸｘ]))?"
# A run of at least _MIN_DIGITS characters (the only runs that can hold a number): the
# lookahead passes at the start of every such run, and a shorter run it lets through,
# or a piece of one, holds no number either (_run_numbers): no number is missed.
_LONG_RUN = re.compile(rf"(?=[{_D}][{_D}{_X}{_SEP}]{{{_MIN_DIGITS - 1}}}){_WIDE_GROUP}(?:[{_SEP}]{{1,3}}{_WIDE_GROUP})*")
# Where a run can start: a digit and 9 more run characters, _LONG_RUN's lookahead as a plain
# pattern, which the regex engine scans for with its fast first-character search.
_RUN_START = re.compile(rf"[{_D}][{_D}{_X}{_SEP}]{{{_MIN_DIGITS - 1}}}")

_STREET = "路|街|大道|大街|巷|弄|胡同|村|小区|花园|公寓|大厦|广场|园区|社区|苑"
_NUMBER = r"[0-9０-９A-Za-z一二三四五六七八九十百千零〇两]+"
_NUMBERED = "号楼|号院|号|栋|幢|座|单元|室|楼|层|户"
_PART = rf"[\s\-#附之]*{_NUMBER}[\s\-]*(?:{_NUMBERED})"
_BUILDING = r"[\u4e00-\u9fffA-Za-z]{1,10}?(?:大厦|大楼|公寓|花园|小区|广场|中心|苑|园|府|城)"
_ADDRESS = re.compile(
    # a place name ending in a street word, an optional section, one or more numbered parts,
    # then perhaps a building name and its numbered parts
    rf"[\u4e00-\u9fffA-Za-z0-9]{{1,15}}?(?:{_STREET})(?:{_NUMBER}段)?(?:{_PART})+"
    rf"(?:{_BUILDING}(?:{_PART})*)?(?:[\s\-]*[0-9０-９]+)?"
    # or a building with its unit or room, without a street
    rf"|{_NUMBER}[\s\-]*(?:栋|幢|号楼|座)(?:{_PART})+(?:[\s\-]*[0-9０-９]+)?"
)
_REGION = re.compile(r"^(?:.*?(?:省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗))+")
_ADDRESS_WORD = re.compile(rf"{_STREET}|栋|幢|号楼|座")


def mask_text(text: str | None) -> str | None:
    """Text with ID numbers, phone numbers and street addresses masked.

    Text is masked piece by piece between full-width semicolons, the separator of a
    rule's 依据: no number run and no address holds a "；" (no pattern here matches it,
    looks past it or treats the end of the text specially), so the pieces masked alone
    give the same text, and the pieces that repeat (a rule's condition) are masked once."""
    if not text:
        return text
    if _SEPARATOR in text:
        return _SEPARATOR.join(map(_mask, text.split(_SEPARATOR)))
    return _mask(text)


_SEPARATOR = "；"


@functools.lru_cache(maxsize=1 << 16)  # quoted texts repeat (在吗, 亲，在的): mask each once
def _mask(text: str) -> str:
    # _mask_numbers itself is the fast test for a number: it scans once for a run start
    # (_RUN_START) and returns text with fewer than _MIN_DIGITS digits as it is.
    text = _mask_numbers(text)
    if not _ADDRESS_WORD.search(text):  # no street or building word, no address: skip the slow pattern
        return text
    return _ADDRESS.sub(_mask_address, text)


def long_runs(text: str) -> Iterator[re.Match]:
    """What `_LONG_RUN.finditer(text)` gives, found faster on long text (a rule's 依据): a
    match of _LONG_RUN starts exactly where its lookahead holds, which is where
    _RUN_START matches, and is never empty."""
    search, match, pos = _RUN_START.search, _LONG_RUN.match, 0
    while (start := search(text, pos)) is not None:
        run = match(text, start.start())
        yield run
        pos = run.end()


def _mask_numbers(text: str) -> str:
    out, done = [], 0
    for run in long_runs(text):
        first, digits = run.start(), run.group()
        if not digits.isascii():
            digits = digits.translate(_NARROW)
        if digits.isalnum():  # one group (an id, a phone number): no separators to try
            masked = _masked_number(digits)
            found = () if masked is None else ((0, len(digits), masked),)
        else:
            found = _run_numbers(digits, first > 0 and text[first - 1] in "(（")
        for start, end, masked in found:
            out += [text[done:first + start], masked]
            done = first + end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


@functools.lru_cache(maxsize=1 << 14)  # runs repeat across texts (dates and times in 依据): find each once
def _run_numbers(run: str, after_bracket: bool) -> tuple[tuple[int, int, str], ...]:
    """(start, end, masked form) of each number in one run of digit groups, places counted
    from the run's start; `after_bracket`: the run follows a "(" (an area code's)."""
    if len(run) < _MIN_DIGITS:  # every number masked has at least _MIN_DIGITS digits
        return ()
    groups = list(_GROUP.finditer(run))
    found = []
    for i, j in _numbers(groups):
        start = groups[i].start()
        if j > i + 1 and (run[start - 1] == "(" if start > 0 else after_bracket):
            start -= 1  # (0571)87654321: the bracket goes with the area code (before the run: -1)
        found.append((start, groups[j - 1].end(), _masked_number("".join(g.group() for g in groups[i:j]))))
    return tuple(found)


def _numbers(groups: list[re.Match]) -> list[tuple[int, int]]:
    """(first, past last) group of each number in a run: a group that is a number by itself
    first (2024-05-10 13812345678 is a date and a mobile, not a 15-digit ID), then among the
    groups between those, the leftmost and longest joins."""
    single = [_masked_number(g.group()) is not None for g in groups]
    found, i = [], 0
    while i < len(groups):
        if single[i]:
            found.append((i, i + 1))
            i += 1
            continue
        limit = next((k for k in range(i, len(groups)) if single[k]), len(groups))
        for j in range(limit, i + 1, -1):
            if _masked_number("".join(g.group() for g in groups[i:j])) is not None:
                found.append((i, j))
                i = j
                break
        else:
            i += 1
    return found


def _masked_number(digits: str) -> str | None:
    """The masked form of `digits` when they are an ID, mobile or landline number."""
    n = len(digits)
    if digits[-1] in "Xx":
        if n == 18 and digits[:-1].isdigit():
            return "*" * (n - 4) + digits[-4:]
        shorter = _masked_number(digits[:-1]) if n > 1 else None  # 13812345678X: a mobile, then X
        return None if shorter is None else shorter + digits[-1]
    if n == 15 and digits.startswith("0086") and digits[4] == "1" and digits[5] in "3456789":
        return "0086" + digits[4:7] + MASK + digits[-4:]
    if n in (15, 18):
        return "*" * (n - 4) + digits[-4:]
    if n == 11 and digits[0] == "1" and digits[1] in "3456789":
        return digits[:3] + MASK + digits[-4:]
    if n == 13 and digits.startswith("86") and digits[2] == "1" and digits[3] in "3456789":
        return "86" + digits[2:5] + MASK + digits[-4:]
    if 10 <= n <= 12 and digits[0] == "0" and digits[1] != "0":
        area = digits[:3] if digits[1] in "12" else digits[:4]
        return f"{area}-{MASK}{digits[-4:]}"
    return None


def _mask_address(m: re.Match) -> str:
    found = m.group()
    region = _REGION.match(found)
    keep = region.group() if region and len(region.group()) < len(found) else ""
    # The region words must come before the street part, not inside it.
    if keep and re.search(rf"(?:{_STREET})", keep):
        keep = ""
    return keep + MASK


def mask_entry(entry):
    """The entry with its quoted text (excerpt, evidence) masked, and its buyer and
    conversation too (a buyer nick or a conversation cut from a chat export may be a
    phone number); the same object when nothing needed masking. The order column is
    left alone: Taobao order numbers are 18–19 digits and would read as ID numbers."""
    changed = {}
    for name in ("excerpt", "evidence", "buyer", "conversation"):
        value = getattr(entry, name)
        masked = mask_text(value)
        if masked != value:
            changed[name] = masked
    return attrs.evolve(entry, **changed) if changed else entry
