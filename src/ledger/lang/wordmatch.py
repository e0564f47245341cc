"""How a word list matches a text: the meaning of `text has any LIST` (and its exceptions).

A word matches where it occurs in the text outside every exception phrase of the list:
each occurrence of an exception (longest first, leftmost, not overlapping) is taken out of
the text before the words are looked for. The compiler emits the same in SQL
(`regexp_replace` of the exceptions, then `contains`); `find` is what explain and the
statement's evidence use to say which word matched and which exception cancelled it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import attrs

MASK = "\x1f"  # stands in for an exception's text: never part of a word


@attrs.frozen
class WordMatch:
    matched: tuple[str, ...]  # words found outside the exceptions, in list order
    cancelled: tuple[tuple[str, str], ...]  # (word, exception) found only inside an exception


def exception_pattern(exceptions) -> str:
    """The exceptions as one alternation, longest first (so 财源滚滚 is taken before 滚滚)."""
    ordered = sorted(set(e for e in exceptions if e), key=lambda e: (-len(e), e))
    return "|".join(re.escape(e) for e in ordered)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def mask(text: str, exceptions) -> str:
    """The text with every exception occurrence replaced by MASK."""
    pattern = exception_pattern(exceptions)
    return _compiled(pattern).sub(MASK, text) if pattern else text


def find(text: str | None, words, exceptions=()) -> WordMatch:
    if not text:
        return WordMatch((), ())
    searched = mask(text, exceptions)
    matched = tuple(w for w in words if w and w in searched)
    cancelled = []
    for w in words:
        if w and w not in searched and w in text:
            phrase = next((e for e in sorted(exceptions, key=lambda e: (-len(e), e)) if w in e and e in text), "")
            cancelled.append((w, phrase))
    return WordMatch(matched, tuple(cancelled))
