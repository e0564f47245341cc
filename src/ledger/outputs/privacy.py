"""Masking buyers' personal data in the text a statement quotes.

Leaking a buyer's phone number, ID number or address is itself a violation in the
rulebook (泄露信息), so no workbook may repeat one, even when the agent wrote it in a
chat. `mask_text` masks, in this order:

* ID numbers (居民身份证号): 18 digits (the last may be X) or 15 digits, not part of a
  longer run of digits. Only the last 4 characters stay: `**************123X`.
* Mobile numbers: 11 digits starting 1[3-9], optionally written 3-4-4 with spaces or
  hyphens, optionally after +86/86. The first 3 and the last 4 digits stay
  (`138****5678`, as Taobao itself shows them).
* Landline numbers: area code 0xx / 0xxx, a hyphen or space, 7–8 digits. The area code
  and the last 4 digits stay (`0571-****6666`).
* Street addresses: a road, street, lane, village or estate name followed by a house,
  building, unit or room number (文三路123号4幢501室). Everything from the street on is
  replaced by `****`; the province, city and district before it stay, since they say
  nothing about a person.

Masking is deliberately greedy in what it recognises as a number (a 15-digit order id
quoted in a message is masked too): a masked order id costs a look-up, a leaked ID
number cannot be taken back. Text without a digit is returned unchanged, fast.
"""

from __future__ import annotations

import functools
import re

MASK = "****"

_ID = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0\d{2,3})[ -](\d{3,4})[ -]?(\d{4})(?![0-9])")
_STREET = "路|街|大道|大街|巷|弄|胡同|村|小区|花园|公寓|大厦|广场|园区|社区|苑"
_NUMBERED = "号楼|号院|号|栋|幢|座|单元|室|楼|层|户"
_ADDRESS = re.compile(
    # a place name ending in a street word, then one or more numbered parts
    rf"[\u4e00-\u9fffA-Za-z0-9]{{1,15}}?(?:{_STREET})"
    rf"(?:[\s\-#]*[0-9０-９A-Za-z一二三四五六七八九十百零]+[\s\-]*(?:{_NUMBERED}))+"
    rf"(?:[\s\-]*[0-9０-９]+)?"
)
_REGION = re.compile(r"^(?:.*?(?:省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗))+")
_DIGIT = re.compile(r"[0-9０-９]")


_STREET_WORD = re.compile(_STREET)
# Every ID, mobile or landline match contains 3 digits, an optional space or hyphen,
# then 3 more: text without that (timestamps such as 2024-05-03 12:34:56, amounts) needs
# none of the three substitutions. Evidence lines all hold digits, and there is one per entry.
_NUMBER_LIKE = re.compile(r"\d{3}[ -]?\d{3}")


def mask_text(text: str | None) -> str | None:
    """Text with ID numbers, phone numbers and street addresses masked."""
    if not text or not _DIGIT.search(text):
        return text
    return _mask(text)


@functools.lru_cache(maxsize=1 << 16)  # quoted texts repeat (在吗, 亲，在的): mask each once
def _mask(text: str) -> str:
    if not _NUMBER_LIKE.search(text):  # none of the number patterns can match: skip all three
        return _mask_addresses(text)
    text = _ID.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-{MASK}{m.group(3)}", text)
    return _mask_addresses(text)


def _mask_addresses(text: str) -> str:
    if not _STREET_WORD.search(text):  # no street word, no address: skip the slow pattern
        return text
    return _ADDRESS.sub(_mask_address, text)


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
    import attrs

    changed = {}
    for name in ("excerpt", "evidence", "buyer", "conversation"):
        value = getattr(entry, name)
        masked = mask_text(value)
        if masked != value:
            changed[name] = masked
    return attrs.evolve(entry, **changed) if changed else entry
