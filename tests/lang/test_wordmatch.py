"""wordmatch.find (the evidence's "命中 LIST：words") against the definition read literally:
every word of the list, in list order, found outside the exceptions; every word found only
inside an exception, with the exception that holds it."""

from __future__ import annotations

from conftest import n_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.lang.wordmatch import WordMatch, find, longest_first, mask

CHARS = "亲子自请邀申ab"
words_of = st.text(alphabet=CHARS, max_size=3)


def literal(text, words, exceptions) -> WordMatch:
    if not text:
        return WordMatch((), ())
    searched = mask(text, exceptions)
    matched = tuple(w for w in words if w and w in searched)
    cancelled = tuple((w, next((e for e in longest_first(exceptions) if w in e and e in text), ""))
                      for w in words if w and w not in searched and w in text)
    return WordMatch(matched, cancelled)


@settings(max_examples=n_examples(300), deadline=None)
@given(st.text(alphabet=CHARS, max_size=12), st.lists(words_of, max_size=8),
       st.lists(st.text(alphabet=CHARS, min_size=1, max_size=4), max_size=3))
def test_find_is_the_literal_definition(text, words, exceptions):
    assert find(text, words, tuple(exceptions)) == literal(text, words, tuple(exceptions))


def test_find_keeps_list_order_and_repeats():
    assert find("请亲自来", ("自", "请", "亲", "请"), ("亲自",)) == WordMatch(("请", "请"), (("自", "亲自"), ("亲", "亲自")))
