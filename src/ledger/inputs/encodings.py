"""Encodings of CSV input: which codec a file's bytes are in, and decoding that keeps bad bytes.

`sniff(stream)` gives (codec, BOM length, clean, sha256) in one streamed pass: a BOM decides
(UTF-8, UTF-16 LE/BE); without one, NUL bytes on alternate positions mean UTF-16; otherwise
UTF-8 if the file decodes, or if most of its non-ASCII lines do; else GB18030. Decoding with the error
handler `ESCAPE_ERRORS` keeps each undecodable byte as a lone surrogate (`SURROGATE`
finds them, so only the rows holding one are rejected); `printable` makes such text
safe to report.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from typing import NamedTuple

ESCAPE_ERRORS = "ledger.escape"


def _escape_undecodable(exc: UnicodeError):
    """Decode error handler: keep bad bytes as lone surrogates U+DC00+byte.

    A strict decoder never yields lone surrogates, so a row containing one is known
    to hold undecodable bytes. One byte at a time, so a bad lead byte never swallows
    the comma or newline after it; UTF-16 must skip whole code units to stay aligned.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    end = exc.end if "16" in exc.encoding else exc.start + 1
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:end]), end


codecs.register_error(ESCAPE_ERRORS, _escape_undecodable)
SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    return SURROGATE.sub("\ufffd", text)


class Sniffed(NamedTuple):
    """What one streamed pass over a file's bytes tells: its codec and its digest."""

    codec: str
    bom: int  # length of the BOM
    clean: bool  # the bytes decode strictly with `codec` (known for UTF-8 only; else False)
    sha256: str


def sniff(stream, chunk: int = 1 << 20, sample_lines: int = 2000) -> Sniffed:
    """(codec, BOM length, clean, sha256) of a CSV or text file's bytes, read once in chunks.

    A BOM decides (UTF-8, UTF-16 LE/BE); without one, NUL bytes on alternate positions mean
    UTF-16; otherwise UTF-8 if the bytes decode, or if most of the first `sample_lines`
    non-ASCII lines do; else GB18030. The file is never held whole: a damaged zip member
    fails here (its CRC is checked at its end), before any of its rows is read."""
    digest = hashlib.sha256()
    head = b""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    good = bad = 0
    partial = b""  # the start of a line that runs on into the next chunk (sampling only)
    while block := stream.read(chunk):
        digest.update(block)
        if len(head) < 4096:
            head += block[:4096 - len(head)]
        if utf8:
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                utf8 = False
        if good + bad < sample_lines and block.isascii() and partial.isascii():
            end = block.rfind(b"\n")
            partial = block[end + 1:] if end >= 0 else (partial + block)[-(1 << 16):]
        elif good + bad < sample_lines:
            lines = (partial + block).split(b"\n")
            partial = lines.pop()[-(1 << 16):]
            for line in lines:
                if not line.isascii():
                    try:
                        line.decode("utf-8")
                        good += 1
                    except UnicodeDecodeError:
                        bad += 1
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if partial and not partial.isascii() and good + bad < sample_lines:
        try:
            partial.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
    sha = digest.hexdigest()
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"),
                       (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return Sniffed(codec, len(bom), utf8 and codec == "utf-8-sig", sha)
    utf16 = utf16_without_bom(head)
    if utf16:
        return Sniffed(utf16, 0, False, sha)
    if utf8:
        return Sniffed("utf-8", 0, True, sha)
    return Sniffed("utf-8" if good > bad else "gb18030", 0, False, sha)


def utf16_without_bom(sample: bytes) -> str | None:
    # ASCII (the header at least) in UTF-16 puts a NUL in every other byte.
    pairs = len(sample) // 2
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    if odd >= max(2, pairs // 10) and even * 4 < odd:
        return "utf-16-le"
    if even >= max(2, pairs // 10) and odd * 4 < even:
        return "utf-16-be"
    return None
