"""The roster (花名册): who owns which customer-service account, and their pay.

`roster.csv` (UTF-8 with or without BOM, or GB18030 as Chinese Excel saves it), one
line per account, header row required:

    客服,工号,姓名,部门,基本工资,绩效工资,最低工资,入职,离职

客服 and 工号 are required; money columns are decimal 元 (empty: 0); 入职 / 离职 are
dates YYYY-MM-DD or YYYY/M/D (empty: open). One employee (工号) may own several accounts; their
姓名, 部门 and pay are taken from their first line, and a later line that disagrees
is rejected. A malformed line is rejected with file, line and reason, like an event
row, and the rest is used. English headers are accepted too (account, employee_id,
name, department, base_pay, performance_pay, minimum_wage, start, end).
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import attrs

from ledger.core.entries import normalise_account
from ledger.core.errors import LedgerError
from ledger.core.money import parse_yuan
from ledger.inputs.contract import Reject

COLUMNS = ("客服", "工号", "姓名", "部门", "基本工资", "绩效工资", "最低工资", "入职", "离职")
_ALIASES = {"客服账号": "客服", "账号": "客服", "旺旺": "客服", "员工编号": "工号", "入职日期": "入职",
            "离职日期": "离职", "当地最低工资": "最低工资",
            "account": "客服", "agent": "客服", "employee_id": "工号", "name": "姓名",
            "department": "部门", "base_pay": "基本工资", "performance_pay": "绩效工资",
            "minimum_wage": "最低工资", "start": "入职", "end": "离职"}
MONEY = ("基本工资", "绩效工资", "最低工资")


@attrs.frozen
class Employee:
    id: str  # 工号
    name: str
    department: str
    pay: dict  # 基本工资 / 绩效工资 / 最低工资 -> Decimal
    start: date | None
    end: date | None
    accounts: tuple[str, ...]

    @property
    def wage(self) -> Decimal:
        """The month's wage: 基本工资 + 绩效工资."""
        return self.pay["基本工资"] + self.pay["绩效工资"]

    def active(self, first: date, last: date) -> bool:
        return (self.start is None or self.start <= last) and (self.end is None or self.end >= first)


@attrs.frozen
class Roster:
    path: str
    employees: tuple[Employee, ...]  # in file order
    rejects: tuple[Reject, ...]
    lines: int

    def by_account(self) -> dict[str, Employee]:
        return {a: e for e in self.employees for a in e.accounts}


def find(root: Path, given: Path | None, events_root: Path | None = None) -> Path | None:
    """--roster if given (it must exist), else roster.csv in `root` (the working
    directory, the workspace root), else roster.csv beside the events folder."""
    if given is not None:
        if not Path(given).is_file():
            raise LedgerError(f"找不到花名册 (roster not found): {given}", exit_code=2)
        return Path(given)
    for folder in (Path(root), Path(events_root).resolve().parent if events_root is not None else None):
        if folder is not None and (folder / "roster.csv").is_file():
            return folder / "roster.csv"
    return None


def read(path: Path) -> Roster:
    data = Path(path).read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any bytes
        raise LedgerError(f"花名册无法解码 (cannot decode roster): {path}", exit_code=2)
    return parse(text, Path(path).as_posix())


def _lines(text: str):
    """(line number, fields or None, raw, problem) of each line. A roster line is one
    physical line: a stray quote, a NUL or a field over the csv module's limit rejects its
    own line and never takes the lines after it in."""
    for lineno, raw in enumerate(text.split("\n"), 1):
        raw = raw.removesuffix("\r")
        if "\x00" in raw:
            yield lineno, None, raw, "含有 NUL 字符 (NUL character)"
            continue
        try:
            yield lineno, next(csv.reader([raw], strict=True), []), raw, None
        except csv.Error as e:
            yield lineno, None, raw, f"CSV 格式错误 (malformed CSV): {e}"


def parse(text: str, name: str = "roster.csv") -> Roster:
    lines_ = list(_lines(text))
    rows = [(n, row, raw, problem) for n, row, raw, problem in lines_ if problem or any(c.strip() for c in row)]
    if not rows:
        raise LedgerError(f"花名册是空的 (empty roster): {name}", exit_code=2)
    if rows[0][3]:
        raise LedgerError(f"花名册表头无法读取 (cannot read the roster header): {name}:{rows[0][0]}：{rows[0][3]}",
                          exit_code=2)
    header = [_ALIASES.get(h.strip().lower(), h.strip()) for h in rows[0][1]]
    missing = [c for c in ("客服", "工号") if c not in header]
    if missing:
        raise LedgerError(f"花名册缺少列 (roster lacks columns) {', '.join(missing)}: {name}；"
                          f"需要 (expected): {','.join(COLUMNS)}", exit_code=2)
    col = {h: i for i, h in enumerate(header)}
    rejects: list[Reject] = []
    people: dict[str, dict] = {}
    seen_accounts: dict[str, int] = {}
    lines = 0
    for lineno, row, raw, problem in rows[1:]:
        lines += 1

        def reject(reason: str):
            rejects.append(Reject(name, lineno, reason, raw))

        if problem:
            reject(problem)
            continue
        if len(row) != len(header):
            reject(f"列数不对 (wrong column count): {len(row)}，应为 {len(header)}")
            continue
        cell = {h: row[i].strip() for h, i in col.items()}
        if "客服" in cell:
            cell["客服"] = normalise_account(cell["客服"])
        account, emp = cell.get("客服", ""), cell.get("工号", "")
        if not account or not emp:
            reject("缺少 客服 或 工号 (account and employee id are required)")
            continue
        try:
            pay = {m: parse_yuan(cell[m]) if cell.get(m) else Decimal(0) for m in MONEY}
        except ValueError as exc:
            reject(str(exc))
            continue
        if any(v < 0 for v in pay.values()):
            reject("工资不能是负数 (negative pay)")
            continue
        try:
            start = _date(cell.get("入职", ""))
            end = _date(cell.get("离职", ""))
        except ValueError:
            reject(f"日期格式应为 YYYY-MM-DD (bad date): {cell.get('入职', '')!r} {cell.get('离职', '')!r}")
            continue
        if account in seen_accounts:
            reject(f"客服账号 {account} 重复，第 {seen_accounts[account]} 行已有 (account listed twice)")
            continue
        fields = {"name": cell.get("姓名", ""), "department": cell.get("部门", ""), "pay": pay,
                  "start": start, "end": end}
        if emp in people:
            first = people[emp]
            if any(first[k] != v for k, v in fields.items()):
                reject(f"工号 {emp} 的姓名、部门、工资或日期与前面的行不一致 (conflicts with an earlier line)")
                continue
            first["accounts"].append(account)
        else:
            people[emp] = {**fields, "accounts": [account]}
        seen_accounts[account] = lineno
    employees = tuple(Employee(emp, p["name"], p["department"], p["pay"], p["start"], p["end"],
                               tuple(p["accounts"])) for emp, p in people.items())
    return Roster(name, employees, tuple(rejects), lines)


def _date(text: str) -> date | None:
    """YYYY-MM-DD (also YYYY/MM/DD, YYYY/M/D as Excel writes it); empty: None."""
    if not text:
        return None
    parts = text.replace("/", "-").split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    return date(int(parts[0]), int(parts[1]), int(parts[2]))
