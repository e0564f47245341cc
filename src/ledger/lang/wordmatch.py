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


def longest_first(exceptions) -> tuple[str, ...]:
    """The order an alternation tries them in: longest first (财源滚滚 before 滚滚), then by text."""
    return tuple(sorted(set(e for e in exceptions if e), key=lambda e: (-len(e), e)))


@lru_cache(maxsize=256)
def _compiled(exceptions: tuple[str, ...]) -> re.Pattern | None:
    """One compiled alternation per list of exceptions (evidence asks for it on every line)."""
    ordered = longest_first(exceptions)
    return re.compile("|".join(re.escape(e) for e in ordered)) if ordered else None


def mask(text: str, exceptions) -> str:
    """The text with every exception occurrence replaced by MASK."""
    pattern = _compiled(tuple(exceptions))
    return pattern.sub(MASK, text) if pattern is not None else text


@lru_cache(maxsize=256)
def _by_first_char(words: tuple[str, ...]) -> dict[str, tuple[tuple[int, str], ...]]:
    """The list's words (with their place in it) by their first character."""
    index: dict[str, list[tuple[int, str]]] = {}
    for i, w in enumerate(words):
        if w:
            index.setdefault(w[0], []).append((i, w))
    return {c: tuple(ws) for c, ws in index.items()}


def find(text: str | None, words, exceptions=()) -> WordMatch:
    if not text:
        return WordMatch((), ())
    searched = mask(text, exceptions)
    # Only a word whose first character is in the text can be in it (or in the text with
    # exceptions masked): the statement asks this of every line, for lists of hundreds of words.
    index = _by_first_char(tuple(words))
    candidates = sorted(x for c in set(text) for x in index.get(c, ()))
    matched = tuple(w for _, w in candidates if w in searched)
    cancelled = []
    for _, w in candidates:
        if w not in searched and w in text:
            phrase = next((e for e in longest_first(exceptions) if w in e and e in text), "")
            cancelled.append((w, phrase))
    return WordMatch(matched, tuple(cancelled))
