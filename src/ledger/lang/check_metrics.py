"""Semantic checks of metrics, monthly rules, caps and floors (mixed into check._Checker).

Kept apart from check.py so the event-rule checker stays as it was; the mixin uses the
checker's helpers (`error`, `_type`, `_expect_bool`, `_field`, `_event_type`).
"""

from __future__ import annotations

from ledger.lang import ast
from ledger.lang.policy import COMPARABLE, TYPE_NAMES, suggest

# The money columns of the roster a cap or floor may name (see roster.py).
ROSTER_MONEY_FIELDS = ("基本工资", "绩效工资", "最低工资")
METRIC_TYPES = ("number", "money", "duration", "percent")
_AGG_VALUE_TYPES = {"sum": ("number", "money", "duration"), "avg": ("number", "money", "duration"),
                    "min": ("number", "money", "duration", "time"), "max": ("number", "money", "duration", "time"),
                    "percentile": ("number", "money", "duration")}
# numerator type, denominator type -> type of the ratio ("percent": a share, shown as %)
RATIO_TYPES = {("number", "number"): "percent", ("money", "money"): "percent",
               ("duration", "duration"): "percent", ("money", "number"): "money",
               ("duration", "number"): "duration", ("number", "percent"): "number"}


class MetricChecks:
    """Checks for the issue-3 constructs; `self` is a check._Checker."""

    def _check_metrics(self, metrics: list[ast.Metric]) -> dict[str, str]:
        """Check every metric; return name -> result type for the ones that check."""

        declared: dict[str, ast.Metric] = {}
        for m in metrics:
            if m.name.value in declared:
                self.error(m.name.pos, f"指标 {m.name.value} 重复定义 (metric declared twice; first at {declared[m.name.value].pos})")
                continue
            declared[m.name.value] = m
        types: dict[str, str] = {}
        for m in declared.values():
            if m.kind in ("count", "distinct", "fines"):
                types[m.name.value] = "number"
            if m.on is None:
                continue
            event = self._event_type(m.on.event)
            if event is None:
                continue
            for key in m.on.per:
                self._field(event, key)
            if m.on.filter is not None:
                self._expect_bool(m.on.filter, event, sequence=False, where="筛选条件 [filter]")
            if m.when is not None:
                self._expect_bool(m.when, event, sequence=bool(m.on.per), where="when")
            for _, window in m.windows:
                self._check_window(window, event)
            if m.wait is not None:
                self._check_wait(m.wait, event)
            for value in m.values:
                if isinstance(value, ast.Ref) and value.scope is None and value.name.value == "wait" \
                        and "wait" not in event.fields:
                    if m.wait is None:
                        self.error(value.pos, "用 wait 要先写 wait for … 子句 (wait needs a `wait for` clause)")
                        continue
                    t = "duration"
                else:
                    t = self._type(value, event, bool(m.on.per))
                if m.kind in _AGG_VALUE_TYPES and t is not None:
                    if t not in _AGG_VALUE_TYPES[m.kind]:
                        self.error(value.pos, f"{m.kind} 不能用于 {TYPE_NAMES[t]} (cannot aggregate this type)")
                    elif t != "time":
                        types[m.name.value] = t
            if m.kind == "percentile" and not (0 <= m.percentile <= 100):
                self.error(m.pos, "百分位必须在 0 到 100 之间 (percentile must be 0..100)")
        # ratios, in dependency order; a cycle never resolves and is reported
        pending = [m for m in declared.values() if m.kind == "ratio"]
        progress = True
        while pending and progress:
            progress = False
            for m in list(pending):
                num, den = m.ratio
                missing = [n for n in (num, den) if n.value not in declared]
                for n in missing:
                    if n.value in self.unparsed:
                        continue
                    self.error(n.pos, f"未知指标 (unknown metric) {n.value!r}", suggest(n.value, declared))
                if missing:
                    pending.remove(m)
                    progress = True
                    continue
                if num.value in types and den.value in types:
                    pair = (types[num.value], types[den.value])
                    if pair in RATIO_TYPES:
                        types[m.name.value] = RATIO_TYPES[pair]
                    else:
                        self.error(m.pos, f"不能相除 (cannot divide): {TYPE_NAMES[pair[0]]} ÷ {TYPE_NAMES[pair[1]]}")
                    pending.remove(m)
                    progress = True
                elif all(n.value not in [p.name.value for p in pending] and n.value not in types for n in (num, den)):
                    pending.remove(m)  # an operand failed its own check
                    progress = True
        for m in pending:
            self.error(m.pos, f"指标 {m.name.value} 循环引用自己 (metric defined in terms of itself)")
        return types

    def _check_wait(self, wait: ast.Wait, trigger) -> None:
        other = self._event_type(wait.event)
        if other is None:
            return
        if wait.filter is not None:
            self._expect_bool(wait.filter, other, sequence=False, where="wait for 筛选条件")
        for key in wait.same:
            a, b = self._field(trigger, key), self._field(other, key)
            if a is not None and b is not None and a != b:
                self.error(key.pos, f"same {key.value}: 两种事件中类型不同 (types differ: {a} vs {b})")

    def _check_monthly(self, rules: list[ast.MonthlyRule], metric_types: dict[str, str], event_rule_ids) -> list:
        """Check the monthly rules; return the versions that may be used."""
        seen: dict[str, list[ast.MonthlyRule]] = {}
        kept = []
        for rule in rules:
            if rule.id.value in event_rule_ids:
                self.error(rule.id.pos, f"规则 {rule.id.value} 重复定义 (duplicate rule id)")
                continue
            if not self._versions_ok(rule, seen.get(rule.id.value, [])):
                continue
            seen.setdefault(rule.id.value, []).append(rule)
            kept.append(rule)
            if rule.when is not None:
                self._metric_condition(rule.when, metric_types)
            for tier in rule.tiers:
                if rule.tiered:
                    self._metric_condition(tier.when, metric_types)
                a = tier.amount
                if a.percent is not None or a.steps or a.points:
                    self.error(a.pos, "月度规则只能写固定金额，如 bonus 300元 (monthly rules pay a fixed amount)")
                elif a.value <= 0:
                    self.error(a.pos, "金额必须大于 0 (amount must be positive)")
        return kept

    def _metric_condition(self, expr, types: dict[str, str]) -> str | None:
        """Type of a condition over metrics; reports unknown metrics and mismatches."""

        if isinstance(expr, ast.Literal):
            return expr.type
        if isinstance(expr, ast.Ref):
            if expr.scope is not None or expr.name.value not in types:
                if expr.scope is None and expr.name.value in self.unparsed:
                    return None
                self.error(expr.pos, f"未知指标 (unknown metric) {expr.name.value!r}；月度规则的条件只能用指标 (monthly conditions read metrics)",
                           suggest(expr.name.value, types))
                return None
            return types[expr.name.value]
        if isinstance(expr, ast.Compare):
            a, b = self._metric_condition(expr.left, types), self._metric_condition(expr.right, types)
            if a is not None and b is not None and (a, b) not in COMPARABLE:
                self.error(expr.pos, f"类型不匹配 (type mismatch): 不能比较 {TYPE_NAMES[a]} 和 {TYPE_NAMES[b]}",
                           percent_hint(expr, a, b))
            return "bool"
        if isinstance(expr, ast.Not):
            self._metric_bool(expr.operand, types)
            return "bool"
        if isinstance(expr, ast.BoolOp):
            for o in expr.operands:
                self._metric_bool(o, types)
            return "bool"
        self.error(expr.pos, "月度规则的条件只能比较指标，如 询单转化率 >= 40% (compare metrics with values)")
        return None

    def _metric_bool(self, expr, types) -> None:
        t = self._metric_condition(expr, types)
        if t is not None and t != "bool":
            self.error(expr.pos, "这里需要条件（是/否）(condition expected)")

    def _check_caps(self, caps: list[ast.Cap], floors: list[ast.Floor]) -> None:

        for cap in caps:
            if cap.fixed is not None and cap.fixed <= 0:
                self.error(cap.pos, "上限必须大于 0 (cap must be positive)")
            if cap.percent is not None and not (0 < cap.percent <= 100):
                self.error(cap.pos, "比例必须在 0% 到 100% 之间 (share must be within 0..100%)")
            for f in cap.fields:
                if f.value not in ROSTER_MONEY_FIELDS:
                    self.error(f.pos, f"花名册没有金额字段 {f.value!r} (not a roster money field)；可用: {', '.join(ROSTER_MONEY_FIELDS)}",
                               suggest(f.value, ROSTER_MONEY_FIELDS))
        for floor in floors[1:]:
            self.error(floor.pos, f"floor 只能写一次 (declared twice; first at {floors[0].pos})")
        for floor in floors:
            if floor.field.value not in ROSTER_MONEY_FIELDS:
                self.error(floor.field.pos, f"花名册没有金额字段 {floor.field.value!r} (not a roster money field)",
                           suggest(floor.field.value, ROSTER_MONEY_FIELDS))

    def _check_amount_extras(self, rule: ast.Rule, event) -> None:
        """Escalation, percentages and points of an event rule."""

        a = rule.amount
        if a.of is not None and event is not None:
            t = self._field(event, a.of)
            if t is not None and t != "money":
                self.error(a.of.pos, f"百分比只能取金额字段 (a share needs a money field): {a.of.value} 是 {TYPE_NAMES[t]}")
        if a.percent is not None and a.percent <= 0:
            self.error(a.pos, "百分比必须大于 0 (share must be positive)")
        for step in a.steps:
            if step <= 0:
                self.error(a.pos, "金额必须大于 0 (amount must be positive)")
        if any(p <= 0 for p in a.points):
            self.error(a.pos, "扣分必须大于 0 (points must be positive)")
        for window in rule.unless:
            if window.kind in ("after", "same_day"):
                self.error(window.pos, "after 和 same day 只能用在 metric 里；规则请写 within 时长 (only in metrics)")


def percent_hint(expr, a: str, b: str) -> str | None:
    """`>= 0.9` against a percentage: suggest `90%`."""
    number = expr.right if (a, b) == ("percent", "number") else expr.left if (a, b) == ("number", "percent") else None
    if not isinstance(number, ast.Literal):
        return None
    shown = format(number.value * 100, "f")
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return f"提示：百分比指标要和百分比比较，请写 {shown}% (compare a percentage with a percentage: {shown}%)"
