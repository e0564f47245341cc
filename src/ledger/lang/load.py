"""Loading policy files: paths → parsed, checked `Policy` with every diagnostic.

Folders expand to their `*.rules` files (any depth, sorted by path); files are merged
into one policy. `checked_policy` raises PolicyError when any error was found (the
diagnostics travel with it, to be shown at once); `policy_from_bytes` takes files as
(display name, content), e.g. from `git show`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import attrs

from ledger.core.errors import Diagnostic, LedgerError, PolicyError
from ledger.lang.check import check
from ledger.lang.policy import Policy
from ledger.lang.syntax import parse


@attrs.frozen
class PolicySource:
    path: str
    sha256: str


def policy_files(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into their `*.rules` files (sorted, any depth)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.rules"), key=lambda f: f.as_posix()))
        elif p.is_file():
            files.append(p)
        else:
            raise LedgerError(f"找不到规则文件或目录 (policy path not found): {p}", exit_code=2)
    if not files:
        raise LedgerError(f"没有找到规则文件 *.rules (no policy files in): {', '.join(map(str, paths))}", exit_code=2)
    return files


def load_policy(paths: Sequence[Path]) -> tuple[Policy, list[Diagnostic], tuple[PolicySource, ...]]:
    """Parse and check every policy file. Returns all diagnostics (errors and warnings)."""
    named = []
    for f in policy_files(paths):
        try:
            named.append((f.as_posix(), f.read_bytes()))
        except OSError as exc:
            raise LedgerError(f"无法读取规则文件 (cannot read policy file) {f}: {exc}", exit_code=2) from None
    return policy_from_bytes(named)


def policy_from_bytes(named: Sequence[tuple[str, bytes]]) -> tuple[Policy, list[Diagnostic], tuple[PolicySource, ...]]:
    """Parse and check policy files given as (display name, content) — e.g. from `git show`."""
    parsed, diagnostics, sources = [], [], []
    for name, data in named:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LedgerError(f"规则文件不是 UTF-8 (policy file is not UTF-8) {name}: {exc}", exit_code=2) from None
        sources.append(PolicySource(name, hashlib.sha256(data).hexdigest()))
        pf, diags = parse(text, name)
        parsed.append(pf)
        diagnostics.extend(diags)
    policy, more = check(parsed)
    diagnostics.extend(more)
    return policy, diagnostics, tuple(sources)


def checked_policy(paths: Sequence[Path]) -> tuple[Policy, tuple[PolicySource, ...]]:
    policy, diagnostics, sources = load_policy(paths)
    if any(d.severity == "error" for d in diagnostics):
        raise PolicyError("policy has errors", diagnostics=diagnostics)
    return policy, sources
