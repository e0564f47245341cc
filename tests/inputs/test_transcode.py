"""inputs/transcode.py: the UTF-8 copy of a GB18030 file is the same bytes however many
pieces decode it, and fails exactly when decoding the whole file fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.inputs import transcode
from ledger.inputs.transcode import to_utf8

from conftest import n_examples

# Lines GB18030 encodes (two- and four-byte characters, line feeds, CRLF, empty lines).
LINES = st.lists(st.text(alphabet=st.sampled_from(list("ab,\"好亲您€😀𠀀\r")), max_size=30), max_size=40)


@pytest.fixture(autouse=True)
def tiny_pieces(monkeypatch):
    monkeypatch.setattr(transcode, "PIECE_MIN_BYTES", 1)  # cut even a test file into pieces


@settings(max_examples=n_examples(25), deadline=None)
@given(lines=LINES, pieces=st.integers(1, 5))
def test_the_copy_is_the_file_decoded_whole_whatever_the_pieces(tmp_path_factory, lines, pieces):
    folder = tmp_path_factory.mktemp("t")
    data = "\n".join(lines).encode("gb18030")
    source = folder / "a.csv"
    source.write_bytes(data)
    digest = to_utf8(source, str(folder / "copy.csv"), "gb18030", pieces)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (folder / "copy.csv").read_bytes() == data.decode("gb18030").encode("utf-8")
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "copy.csv"]  # no piece left behind


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_byte_that_does_not_decode_in_any_piece_fails_the_copy(tmp_path, where):
    lines = ["买家,在吗"] * 30
    data = [line.encode("gb18030") for line in lines]
    data[where * 14] = b"\x81\n"[:1] + data[where * 14]  # a lead byte with no trail byte before the text
    source = tmp_path / "a.csv"
    source.write_bytes(b"\n".join(data))
    with pytest.raises(UnicodeError):
        source.read_bytes().decode("gb18030")
    assert to_utf8(source, str(tmp_path / "copy.csv"), "gb18030", 3) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "copy.csv"]


def test_the_pieces_are_cut_after_line_feeds(tmp_path):
    source = tmp_path / "a.csv"
    source.write_bytes(b"aaaa\nbb\ncccccccc\nd\n")
    assert transcode._cuts(source, 20, 3) == [0, 8, 17, 20]
    assert transcode._cuts(source, 20, 1) == [0, 20]
    source.write_bytes(b"x" * 20)  # one line: one piece
    assert transcode._cuts(source, 20, 4) == [0, 20]
