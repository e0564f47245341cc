"""Semantic checks: names resolve, types agree, windows make sense.

`check` takes parsed files and returns a `Policy` (everything the compiler needs,
resolved) plus the list of all diagnostics, so `ledger check` shows every problem
in one pass.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ledger.core.errors import Diagnostic, Position
from ledger.lang import ast
from ledger.lang.check_metrics import MetricChecks
from ledger.lang.policy import (
    COMPARABLE,
    CORE_FIELDS,
    DEFAULT_TIMEZONE,
    FIELD_TYPES,
    FUNCTIONS,
    NEIGHBOURS,
    SEQUENCE_FACTS,
    TYPE_NAMES,
    EventType,
    Policy,
    suggest,
)


def check(files: list[ast.PolicyFile]) -> tuple[Policy, list[Diagnostic]]:
    return _Checker(files).run()


class _Checker(MetricChecks):
    def __init__(self, files: list[ast.PolicyFile]):
        self.files = files
        self.diagnostics: list[Diagnostic] = []
        self.sources = {f.filename: f.text.splitlines() for f in files}
        self.events: dict[str, EventType] = {}
        self.words: dict[str, tuple[str, ...]] = {}
        self.word_exceptions: dict[str, tuple[str, ...]] = {}
        # declared in a declaration that failed to parse: already reported, never "unknown"
        self.unparsed = {n for f in files for n in f.unparsed}

    # -- reporting
    def error(self, pos: Position, message: str, hint: str | None = None, severity="error"):
        lines = self.sources.get(pos.filename, [])
        source = lines[pos.line - 1] if 0 < pos.line <= len(lines) else None
        self.diagnostics.append(Diagnostic(pos, message, hint, severity, source))

    def run(self) -> tuple[Policy, list[Diagnostic]]:
        name = self._setting("name", "未命名规则集")
        timezone = self._setting("timezone", DEFAULT_TIMEZONE)
        for f in self.files:
            for decl in f.events:
                self._declare_event(decl)
        for f in self.files:
            for wl in f.words:
                self._declare_words(wl)
        rules = []
        seen: dict[str, list[ast.Rule]] = {}
        for f in self.files:
            for rule in f.rules:
                if rule.effective is None and f.effective is not None:
                    rule = attrs.evolve(rule, effective=f.effective)
                if not self._versions_ok(rule, seen.get(rule.id.value, [])):
                    continue
                seen.setdefault(rule.id.value, []).append(rule)
                self._check_rule(rule)
                rules.append(rule)
        metrics = [m for f in self.files for m in f.metrics]
        metric_types = self._check_metrics(metrics)
        monthly = [attrs.evolve(r, effective=f.effective) if r.effective is None and f.effective is not None else r
                   for f in self.files for r in f.monthly]
        monthly = self._check_monthly(monthly, metric_types, seen)
        examples = tuple(ex for f in self.files for ex in f.examples)
        named = {**seen, **{r.id.value: [r] for r in monthly}}
        for example in examples:
            self._check_example(example, named, metric_types)
        caps = [c for f in self.files for c in f.caps]
        floors = [x for f in self.files for x in f.floors]
        self._check_caps(caps, floors)
        policy = Policy(name, timezone, tuple(self.files), self.events, self.words, tuple(rules), examples,
                        tuple(metrics), metric_types, tuple(monthly), tuple(caps), tuple(floors),
                        dict(self.word_exceptions))
        return policy, self.diagnostics

    def _versions_ok(self, rule: ast.Rule, earlier: list[ast.Rule]) -> bool:
        """One rule id may have several versions if their effective periods don't overlap."""
        for other in earlier:
            if rule.effective is None or other.effective is None:
                self.error(rule.id.pos, f"规则 {rule.id.value} 重复定义 (duplicate rule id; first at {other.pos})",
                           "同一规则的多个版本都要写 effective 日期，且期间不能重叠 (versions need non-overlapping effective dates)")
                return False
            if _overlap(rule.effective, other.effective):
                self.error(rule.effective.pos, f"规则 {rule.id.value} 的生效期间与 {other.pos} 的版本重叠 (effective periods overlap)")
                return False
        return True

    # -- examples
    def _check_example(self, example: ast.Example, rules: dict, metric_types: dict[str, str]) -> None:
        self._check_given(example, metric_types)
        for ev in example.events:
            event = self._event_type(ev.type)
            if event is None:
                continue
            seen_fields: set[str] = set()
            for name, value in ev.fields:
                if name.value in seen_fields:
                    self.error(name.pos, f"字段 {name.value} 写了两次 (field given twice)")
                seen_fields.add(name.value)
                if name.value in ("ts", "type"):
                    self.error(name.pos, f"{name.value} 由 at 和事件名决定，不能写成字段 (given by `at` and the event name)")
                    continue
                ftype = self._field(event, name)
                if ftype is not None and not _compatible(ftype, value.type) and not (ftype == "time" and value.type == "text"):
                    self.error(value.pos, f"字段 {name.value} 是 {TYPE_NAMES[ftype]}，这里是 {TYPE_NAMES[value.type]} (type mismatch)")
        expected = {e.rule.value for e in example.expectations if e.kind in ("entry", "pending")}
        for exp in example.expectations:
            if exp.rule is not None and exp.rule.value not in rules:
                if exp.rule.value in self.unparsed:
                    continue
                self.error(exp.rule.pos, f"未知规则 (unknown rule) {exp.rule.value!r}", suggest(exp.rule.value, rules))
            elif exp.kind == "none" and exp.rule.value in expected:
                self.error(exp.rule.pos, f"expect no {exp.rule.value} 与同一例子里期望它产生的明细矛盾 (contradicts another expectation)")
            elif exp.kind == "nothing" and expected:
                self.error(exp.pos, "expect nothing 与同一例子里的其他期望矛盾 (contradicts another expectation)")

    def _check_given(self, example: ast.Example, metric_types: dict[str, str]) -> None:
        """`given "店:小王" 提问轮次 = 250, 三分钟回复率 = 99.2%`: known metrics, each once per
        agent, written in the metric's unit (a ratio as a percentage)."""
        seen: set[tuple[str, str]] = set()
        for given in example.given:
            for name, value in given.values:
                if (given.agent, name.value) in seen:
                    self.error(name.pos, f"{given.agent} 的指标 {name.value} 写了两次 (metric given twice)")
                seen.add((given.agent, name.value))
                mtype = metric_types.get(name.value)
                if mtype is None and name.value in self.unparsed:
                    continue  # its declaration failed to parse: reported once, there
                if mtype is None:
                    self.error(name.pos, f"未知指标 (unknown metric) {name.value!r}", suggest(name.value, metric_types))
                elif value.type != mtype:
                    hint = None
                    if mtype == "percent" and value.type == "number":
                        shown = format((value.value * 100).normalize(), "f") if value.value <= 1 else value.value
                        hint = f"提示：比值指标写百分比，如 {shown}% (a ratio is given as a percentage)"
                    self.error(value.pos, f"指标 {name.value} 是 {TYPE_NAMES[mtype]}，这里是 {TYPE_NAMES[value.type]} "
                                          f"(type mismatch)", hint)

    def _setting(self, attr: str, default: str) -> str:
        found = [(getattr(f, attr)) for f in self.files if getattr(f, attr) is not None]
        if not found:
            return default
        value = found[0].value
        for other in found[1:]:
            if other.value != value:
                self.error(other.pos, f"与 {found[0].pos} 的设置冲突 (conflicts with the setting there): {other.value!r} ≠ {value!r}")
        if attr == "timezone":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                self.error(found[0].pos, f"未知时区 (unknown time zone): {value!r}",
                           '例如 (e.g.) timezone "Asia/Shanghai"')
                return DEFAULT_TIMEZONE
        return value

    # -- declarations
    def _declare_event(self, decl: ast.EventDecl) -> None:
        name = decl.name.value
        if name in self.events:
            self.error(decl.name.pos, f"事件 {name} 重复声明 (event declared twice; first at {self.events[name].decl.pos})")
            return
        fields = dict(CORE_FIELDS)
        defaults = {}
        declared: set[str] = set()
        for fd in decl.fields:
            fname = fd.name.value
            if fname in declared:
                self.error(fd.name.pos, f"字段 {fname} 重复 (duplicate field)")
                continue
            declared.add(fname)
            ftype = "text"
            if fd.type is not None:
                if fd.type.value not in FIELD_TYPES:
                    self.error(fd.type.pos, f"未知字段类型 (unknown field type) {fd.type.value!r}；可用 (one of): {', '.join(FIELD_TYPES)}",
                               suggest(fd.type.value, FIELD_TYPES))
                else:
                    ftype = fd.type.value
            if fname in CORE_FIELDS and ftype != CORE_FIELDS[fname]:
                self.error(fd.name.pos, f"{fname} 是每个事件都有的字段，类型固定为 {CORE_FIELDS[fname]} (core field, type fixed)")
                ftype = CORE_FIELDS[fname]
            if fname in SEQUENCE_FACTS or fname in NEIGHBOURS:
                self.error(fd.name.pos, f"{fname} 是保留字，不能作字段名 (reserved name)")
            if fd.default is not None:
                if not _compatible(ftype, fd.default.type):
                    self.error(fd.default.pos, f"默认值类型不符 (default has the wrong type): 字段是 {TYPE_NAMES[ftype]}")
                else:
                    defaults[fname] = fd.default
            fields[fname] = ftype
        self.events[name] = EventType(name, fields, defaults, decl)

    def _declare_words(self, wl: ast.WordList) -> None:
        if wl.name.value in self.words:
            self.error(wl.name.pos, f"词表 {wl.name.value} 重复声明 (word list declared twice)")
            return
        self.words[wl.name.value] = wl.words
        self._check_words(wl.words, wl.word_positions or [wl.pos] * len(wl.words))
        if wl.exceptions:
            self.word_exceptions[wl.name.value] = wl.exceptions
            positions = wl.exception_positions or [wl.pos] * len(wl.exceptions)
            self._check_words(wl.exceptions, positions)
            for phrase, pos in zip(wl.exceptions, positions):
                if phrase and not any(w and w in phrase for w in wl.words):
                    self.error(pos, f"例外 {phrase!r} 里没有这个词表的任何词，它不会取消任何匹配 "
                                    f"(exception contains no word of the list)", severity="warning")

    def _check_words(self, words, positions) -> None:
        for word, pos in zip(words, positions):
            if word == "":
                self.error(pos, "词表里有空词，它会匹配所有文字 (empty word matches everything)")
            elif any(c in word for c in "，、；,;"):
                self.error(pos, f"词语 {word!r} 里有逗号：词与词之间请用空格分开 (separate words with spaces)")

    # -- rules
    def _check_rule(self, rule: ast.Rule) -> None:
        event = self._event_type(rule.on.event)
        if rule.amount.value <= 0 and rule.amount.percent is None and not rule.amount.points:
            self.error(rule.amount.pos, "金额必须大于 0 (amount must be positive)")
        elif rule.amount.value != rule.amount.value.quantize(Decimal("0.01")):
            self.error(rule.amount.pos, "金额最多精确到分 0.01元 (at most two decimals)")
        self._check_amount_extras(rule, event)
        if event is None:
            return
        for key in rule.on.per:
            self._field(event, key)
        has_sequence = bool(rule.on.per)
        if rule.on.filter is not None:
            # The filter chooses the members of the sequence, so it cannot use it.
            self._expect_bool(rule.on.filter, event, sequence=False, where="筛选条件 [filter]")
        if rule.when is not None:
            self._expect_bool(rule.when, event, sequence=has_sequence, where="when")
        for window in rule.unless:
            self._check_window(window, event)
        for r in rule.recipients:
            ftype = self._field(event, r)
            if ftype is not None and ftype != "text":
                self.error(r.pos, f"收款/扣款人必须是文字字段 (recipient must be a text field): {r.value} 是 {TYPE_NAMES[ftype]}")

    def _check_window(self, window: ast.Window, trigger: EventType) -> None:
        other = self._event_type(window.event)
        if window.count < 1:
            self.error(window.pos, "at least 后面的数量至少为 1 (count must be at least 1)")
        if window.kind == "range" and window.d1 > window.d2:
            self.error(window.pos, "时间范围的起点大于终点 (window starts after it ends)")
        if other is None:
            return
        if window.filter is not None:
            self._expect_bool(window.filter, other, sequence=False, where="unless 筛选条件")
        for key in window.same:
            a = self._field(trigger, key)
            b = self._field(other, key)
            if a is not None and b is not None and a != b:
                self.error(key.pos, f"same {key.value}: 两种事件中类型不同 (types differ: {a} vs {b})")

    def _event_type(self, name: ast.Name) -> EventType | None:
        if name.value in self.events:
            return self.events[name.value]
        if name.value in self.unparsed:
            return None
        self.error(name.pos, f"未知事件类型 (unknown event type) {name.value!r}",
                   suggest(name.value, self.events) or f"请先声明 (declare it first): event {name.value}(…)")
        return None

    def _field(self, event: EventType, name: ast.Name) -> str | None:
        if name.value in event.fields:
            return event.fields[name.value]
        self.error(name.pos, f"事件 {event.name} 没有字段 {name.value!r} (unknown field)",
                   suggest(name.value, event.fields) or f"可用字段 (fields): {', '.join(event.fields)}")
        return None

    # -- expressions: infer a type, report problems, never raise
    def _expect_bool(self, expr, event: EventType, *, sequence: bool, where: str) -> None:
        t = self._type(expr, event, sequence)
        if t is not None and t != "bool":
            self.error(expr.pos, f"{where} 必须是条件（是/否），这里是 {TYPE_NAMES[t]} (condition expected)")

    def _type(self, e, event: EventType, sequence: bool) -> str | None:
        if isinstance(e, ast.Literal):
            return e.type
        if isinstance(e, ast.Ref):
            return self._ref_type(e, event, sequence)
        if isinstance(e, ast.Call):
            fn = e.function.value
            if fn not in FUNCTIONS:
                self.error(e.function.pos, f"未知函数 (unknown function) {fn!r}", suggest(fn, FUNCTIONS))
                self._type(e.arg, event, sequence)
                return None
            want, result = FUNCTIONS[fn]
            got = self._type(e.arg, event, sequence)
            if got is not None and got != want:
                self.error(e.arg.pos, f"{fn}() 需要 {TYPE_NAMES[want]}，这里是 {TYPE_NAMES[got]} (type mismatch)")
            return result
        if isinstance(e, ast.Compare):
            a = self._type(e.left, event, sequence)
            b = self._type(e.right, event, sequence)
            if a is not None and b is not None:
                if (a, b) not in COMPARABLE:
                    self.error(e.pos, f"类型不匹配 (type mismatch): 不能比较 {TYPE_NAMES[a]} 和 {TYPE_NAMES[b]}")
                elif a == "bool" and e.op not in ("=", "!="):
                    self.error(e.pos, f"是/否 值只能用 = 或 != 比较 (bool compares with = or != only)")
            return "bool"
        if isinstance(e, ast.InList):
            a = self._type(e.subject, event, sequence)
            for v in e.values:
                if a is not None and (a, v.type) not in COMPARABLE:
                    self.error(v.pos, f"类型不匹配 (type mismatch): {TYPE_NAMES[a]} 和 {TYPE_NAMES[v.type]}")
            return "bool"
        if isinstance(e, ast.TextTest):
            a = self._type(e.subject, event, sequence)
            if a is not None and a != "text":
                self.error(e.subject.pos, f"文字测试需要文字字段 (text expected), 这里是 {TYPE_NAMES[a]}")
            if isinstance(e.operand, ast.WordSource) and e.operand.name is None:
                self._check_words(e.operand.words, [e.operand.pos] * len(e.operand.words))
            if isinstance(e.operand, ast.WordSource) and e.operand.name is not None:
                wl = e.operand.name
                if wl.value not in self.words and wl.value not in self.unparsed:
                    self.error(wl.pos, f"未知词表 (unknown word list) {wl.value!r}",
                               suggest(wl.value, self.words) or f"请先声明 (declare it): words {wl.value} = …")
            if e.op == "matches":
                self._check_regex(e)
            return "bool"
        if isinstance(e, ast.Not):
            self._expect_bool(e.operand, event, sequence=sequence, where="not")
            return "bool"
        if isinstance(e, ast.BoolOp):
            for operand in e.operands:
                self._expect_bool(operand, event, sequence=sequence, where=e.op)
            return "bool"
        raise AssertionError(f"unknown node {e!r}")  # pragma: no cover

    def _ref_type(self, ref: ast.Ref, event: EventType, sequence: bool) -> str | None:
        name = ref.name.value
        if ref.scope is not None:
            scope = ref.scope.value
            if scope not in NEIGHBOURS:
                self.error(ref.scope.pos, f"未知前缀 (unknown prefix) {scope!r}；可用 previous 或 next",
                           suggest(scope, NEIGHBOURS))
                return None
            if not sequence:
                self._needs_sequence(ref.scope)
                return None
            return self._field(event, ref.name)
        if name in SEQUENCE_FACTS and name not in event.fields:
            if not sequence:
                self._needs_sequence(ref.name)
                return None
            return SEQUENCE_FACTS[name]
        return self._field(event, ref.name)

    def _needs_sequence(self, name: ast.Name) -> None:
        self.error(name.pos, f"{name.value} 只能用在有 per KEY 的规则的 when 条件里 (needs a sequence: add `per conversation`)")

    def _check_regex(self, e: ast.TextTest) -> None:
        import duckdb  # RE2, as the engine will run it

        try:
            duckdb.sql("SELECT regexp_matches('', ?)", params=[e.operand]).fetchall()
        except duckdb.Error as exc:
            self.error(e.pos, f"正则表达式有误 (bad regex): {str(exc).splitlines()[-1]}")


def _compatible(field_type: str, literal_type: str) -> bool:
    return (field_type, literal_type) in COMPARABLE


def _overlap(a: ast.Effective, b: ast.Effective) -> bool:
    far = date.max
    return a.start <= (b.until or far) and b.start <= (a.until or far)
