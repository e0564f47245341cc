"""Inputs as things to open: files, zip members, workbook sheets, and inputs that will not
be read.

Every input of the events folder (events.py finds them) is one of:
- a `pathlib.Path`: a regular file;
- a `ZipMember`: a member of a zip archive. Each archive is one `Archive`, opened once
  however many members it has (`Archives` closes them when the load is done);
- a `Sheet`: one sheet of a workbook (a file or a member);
- an `Unreadable`: an input that is not read, with the reason (a symbolic link, an encrypted,
  AES or damaged member, a member or workbook past the size limits, a workbook that cannot
  be opened). It gives one reject that names it (`archive.zip/member.csv`), and the other
  members of its archive are read as usual.

`expand(rel, path, settings, archives)` turns an archive or a workbook into its inputs;
`open_binary(source)` opens a file or member as a binary stream, never reading it whole;
`read_limited(source, limit)` reads a workbook whole, up to a limit. `READ_ERRORS` are the
exceptions reading a file or member may raise (each becomes a reject naming the input).
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import attrs

from ledger.inputs import workbooks
from ledger.inputs.settings import ReaderSettings

CONTAINER_SUFFIXES = (".xlsx", ".zip")
MEMBER_SUFFIXES = (".csv", ".jsonl", ".xlsx")
# What reading a file or a zip member may raise: a damaged member (bad CRC, bad deflate data,
# cut short), a member zipfile cannot decrypt or decompress, a file that went away.
READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
LINK_REASON = "符号链接，未读取 (symbolic link, not read)"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: a password-protected workbook, or an .xls
PROTECTED_REASON = ("工作簿有密码保护（或是改了扩展名的旧版 .xls），无法读取：请在 Excel 里去掉密码、另存为 .xlsx 后放回 "
                    "(password-protected workbook, or an .xls renamed: not read)")


class InputProblem(RuntimeError):
    """An input that cannot be read; the message is the reason (Chinese first)."""


@attrs.define(eq=False)
class Archive:
    """A zip archive, opened once for all its members."""

    path: Path
    zf: zipfile.ZipFile | None = None

    def open(self) -> zipfile.ZipFile:
        if self.zf is None:
            self.zf = zipfile.ZipFile(self.path)
        return self.zf

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()
            self.zf = None


class Archives(list):
    """The archives opened by one load: `close_all()` when it is done."""

    def close_all(self) -> None:
        for archive in self:
            archive.close()
        self.clear()


@attrs.frozen
class ZipMember:
    """A file inside a zip archive, read like a path."""

    archive: Archive = attrs.field(eq=False)
    member: str
    size: int = 0  # declared expanded size

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.member).suffix


@attrs.frozen
class Sheet:
    """One sheet of a workbook (a real file or a zip member)."""

    book: object  # Path | ZipMember
    sheet: str

    @property
    def name(self) -> str:
        return f"{self.book.name}#{self.sheet}"

    suffix = ".xlsx-sheet"


@attrs.frozen
class Unreadable:
    """An input that is not read: one reject with `reason`."""

    name: str
    reason: str
    suffix = ""


def open_binary(source):
    """A binary stream of a file or zip member (READ_ERRORS when it cannot be opened)."""
    if isinstance(source, ZipMember):
        return source.archive.open().open(source.member)
    return open(source, "rb")


def read_limited(source, limit: int) -> bytes:
    """The whole content of a file or member (a workbook), or InputProblem past `limit` bytes."""
    with open_binary(source) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputProblem(f"工作簿超过 {_size(limit)}，未读取 (workbook over the size limit; "
                           f"LEDGER_XLSX_MAX_BYTES raises it)")
    return data


def expand(rel: str, path, settings: ReaderSettings,
           archives: Archives) -> tuple[list[tuple[str, object]], list[str]]:
    """(inputs, ignored) of one file: an archive gives its members, a workbook its sheets,
    anything else itself. What cannot be read is an `Unreadable` input, never dropped."""
    suffix = path.suffix.lower()
    if suffix == ".zip" and isinstance(path, Path):
        return _expand_zip(rel, path, settings, archives)
    if suffix == ".xlsx":
        return _expand_workbook(rel, path, settings), []
    return [(rel, path)], []


def _expand_workbook(rel: str, book, settings: ReaderSettings) -> list[tuple[str, object]]:
    try:
        data = read_limited(book, settings.max_workbook_bytes)
        if data.startswith(_OLE):
            return [(rel, Unreadable(book.name, PROTECTED_REASON))]
        names = workbooks.sheet_names(data, settings.xlsx_reader, settings.member_limit)
    except (InputProblem, workbooks.WorkbookTooBig) as e:
        return [(rel, Unreadable(book.name, str(e)))]
    except Exception as e:  # noqa: BLE001 - a damaged or encrypted workbook: one reject for the file
        return [(rel, Unreadable(book.name, f"无法读取 xlsx 文件 (cannot read workbook): {_short(e)}"))]
    return [(f"{rel}#{n}", Sheet(book, n)) for n in names]


def _expand_zip(rel: str, path: Path, settings: ReaderSettings, archives: Archives):
    archive = Archive(path)
    try:
        infos = [i for i in archive.open().infolist() if not i.is_dir()]
    except READ_ERRORS as e:
        archive.close()
        return [(rel, Unreadable(path.name, f"无法读取 zip 文件 (cannot read zip): {_short(e)}"))], []
    archives.append(archive)
    inputs, ignored = [], []
    for info in sorted(infos, key=member_name):
        shown = f"{rel}/{member_name(info)}"
        base = PurePosixPath(info.filename).name
        if base.startswith(".") or "__MACOSX" in info.filename:
            continue
        problem = member_problem(info, settings)
        if problem is not None:
            inputs.append((shown, Unreadable(base, problem)))
            continue
        if PurePosixPath(info.filename).suffix.lower() not in MEMBER_SUFFIXES:
            ignored.append(shown)
            continue
        member = ZipMember(archive, info.filename, info.file_size)
        if member.suffix.lower() == ".xlsx":
            inputs += _expand_workbook(shown, member, settings)
        else:
            inputs.append((shown, member))
    return inputs, ignored


def member_problem(info: zipfile.ZipInfo, settings: ReaderSettings) -> str | None:
    """Why a member is not read: a link, encrypted, compressed in a way zipfile cannot read,
    or expanding past the limits (a zip bomb); None when it can be read."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return LINK_REASON
    if info.compress_type == 99:  # WinZip AES
        return "AES 加密的压缩包成员，需要密码，未读取 (AES-encrypted member: not read)"
    if info.flag_bits & 0x1:
        return "加密的压缩包成员，需要密码，未读取 (encrypted member: password required, not read)"
    if info.compress_type not in _METHODS:
        return f"不支持的压缩方式 {info.compress_type}，未读取 (unsupported compression method)"
    limit = settings.member_limit(info.compress_size)
    if info.file_size > limit:
        return (f"解压后 {_size(info.file_size)}（压缩 {_size(info.compress_size)}），超过上限 {_size(limit)}，"
                f"疑似压缩炸弹，未读取 (member expands past the limit: zip bomb?; "
                f"LEDGER_ZIP_MAX_BYTES / LEDGER_ZIP_MAX_RATIO raise it)")
    return None


def member_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:  # names are UTF-8
        return info.filename
    try:  # zipfile decoded the bytes as cp437: undo that, and read them as GB18030 or UTF-8
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def describe_error(e: BaseException) -> str:
    """The reject reason for an input that failed while being read."""
    if isinstance(e, (InputProblem, workbooks.WorkbookTooBig)):
        return str(e)
    if isinstance(e, (zipfile.BadZipFile, zlib.error, EOFError)):
        return f"压缩包成员已损坏，整个成员未读取 (damaged member, not read): {_short(e)}"
    if isinstance(e, OSError):
        return f"无法读取文件 (cannot read file): {e.strerror or _short(e)}"
    return f"无法读取 (cannot read): {_short(e)}"


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
