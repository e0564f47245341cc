"""The built parser kept between runs (syntax._parser_cache): used only from the user's own
folder, rebuilt when damaged, and parsing the same as a freshly built parser."""

import os
from pathlib import Path

from ledger.lang import syntax

POLICY = Path(__file__).resolve().parents[2] / "policy"


def fresh_parser(monkeypatch, cache_home):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("LEDGER_PARSER_CACHE", raising=False)
    syntax._parser.cache_clear()
    try:
        return syntax._parser()
    finally:
        syntax._parser.cache_clear()


def test_a_cached_parser_parses_the_shipped_policy_as_a_built_one(monkeypatch, tmp_path):
    built = fresh_parser(monkeypatch, tmp_path)  # builds and saves
    files = list((tmp_path / "ledger").glob("policy-parser-*.pickle"))
    assert len(files) == 1 and not list((tmp_path / "ledger").glob("*.tmp"))
    class NotBuilt(syntax.Lark):  # Lark.load makes its instance without __init__
        def __init__(self, *args, **kwargs):
            raise AssertionError("built again instead of loaded from the cache")

    monkeypatch.setattr(syntax, "Lark", NotBuilt)
    loaded = fresh_parser(monkeypatch, tmp_path)  # loads
    assert loaded is not built
    for path in sorted(POLICY.glob("*.policy")):
        text = path.read_text("utf-8")
        assert loaded.parse(text) == built.parse(text), path.name


def test_a_damaged_cache_is_built_again(monkeypatch, tmp_path):
    fresh_parser(monkeypatch, tmp_path)
    (cached,) = (tmp_path / "ledger").glob("policy-parser-*.pickle")
    cached.write_bytes(b"\x80\x04not a parser")
    parser = fresh_parser(monkeypatch, tmp_path)
    assert parser.parse('policy "p"\n') is not None
    assert cached.read_bytes()[:4] != b"\x80\x04no"  # written again, whole


def test_a_folder_others_may_write_to_is_not_used(monkeypatch, tmp_path):
    folder = tmp_path / "ledger"
    folder.mkdir()
    os.chmod(folder, 0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("LEDGER_PARSER_CACHE", raising=False)
    assert syntax._parser_cache("grammar") is None
    os.chmod(folder, 0o700)
    assert syntax._parser_cache("grammar").startswith(str(folder))
    monkeypatch.setenv("LEDGER_PARSER_CACHE", "0")
    assert syntax._parser_cache("grammar") is None
