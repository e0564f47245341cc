"""A realistic synthetic month of customer-service events (示例数据).

`generate()` writes one month of exports for a Taobao/Tmall shop into a folder:

| file | events |
| --- | --- |
| `messages.csv` | `message` (buyer / agent / system chat lines, auto replies, cards, images) |
| `orders.csv` | `order_placed`, `order_paid` |
| `refunds.jsonl` | `refund_requested`, `refund_handled` |
| `shifts.csv` | `shift_start`, `shift_end` (with `handover`, `successor`) |
| `qa.csv` | `qa_flag` (supervisor findings) |
| `ratings.csv` | `rating` |

Good and bad service are mixed at realistic rates, with a few sloppy agents, so that
every one of the shop's ten house rules fires somewhere in a month.

Design:
- Deterministic: one `random.Random(seed)`, no clock, no set iteration; the same
  arguments give byte-identical files.
- Streaming: conversations are generated in order of their start time. Every event a
  conversation causes (messages, orders, refunds days later, ratings, QA findings) is
  at or after its start, so each file keeps a small heap of pending rows and writes out
  everything earlier than the next conversation's start. Memory holds only the rows in
  flight, so the month can be scaled to 10M+ events.
- Time is kept as integer seconds from the month's first midnight (wall time in the
  shop's zone) and formatted `YYYY-MM-DD HH:MM:SS` only when a row is written.
- `bad_rows` malformed rows (unparseable ts, missing type, wrong column count, ...)
  are injected to demonstrate rejection. Each is a damaged copy of a neighbouring row
  with an id of its own (`mx001`, `odx002`, …) and draws no random numbers, so
  `bad_rows=0` gives exactly the same good rows.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import random
from pathlib import Path

from ledger.core.atomic import atomic_path
from ledger.core.errors import LedgerError
from ledger.core.month import Month
from ledger.sample.phrases import (
    AFTER_SALES,
    ASK,
    AUTO_REPLIES,
    BAD_CYCLE,
    BUYER_ANGRY,
    BUYER_BACK,
    BUYER_BUY,
    BUYER_NUDGES,
    BUYER_OPENERS,
    BUYER_ORDERED,
    BUYER_THANKS,
    CLOSINGS,
    CLOSINGS_RUDE,
    CONFRONTATIONS,
    DAY,
    GREETINGS,
    GREETINGS_RUDE,
    GREETINGS_SHORT,
    HOUR,
    HOUR_WEIGHTS,
    HOURS,
    IMAGE,
    MIN,
    NICKNAMES,
    ORDER_ACK_LATE,
    ORDER_ACK_NONE,
    ORDER_CARD,
    ORDER_CONFIRM,
    PAY_CHASE,
    PEAK_HOURS,
    PLACES,
    PRODUCT_CARD,
    PRODUCTS,
    PROMO_DAYS,
    QA_NOTES,
    REASKS,
    RECOMMEND,
    REFUND_REASONS,
    SHORT_REPLIES,
    SIZES,
    SLOW_PREFIX,
    SPILL,
    STOCK_AFTER_CARDS,
    STOCK_IN,
    STOCK_INTRO,
    STOCK_OUT_BAD,
    STOCK_QUESTIONS,
    SURNAMES,
    SYSTEM_INVITE,
    TOPIC_NAMES,
    TOPIC_WEIGHTS,
    VAGUE_REPLIES,
)
from ledger.sample.sink import FILES, Sink

# How often things go wrong, against the fine-dense benchmark month (1.0): at this rate an
# agent is fined a handful of times a month, a sloppy one more, as in a shop that works.
FAULT_RATE = 0.08
MAX_FAULT_RATE = 4.0  # above 1 every fault is likelier still (each capped at 90%): bench/shapes.py's fine-dense month

# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------

def generate(out: Path, month: str = "2024-05", *, agents: int = 10, conversations_per_day: int | None = None,
             seed: int = 20240501, shop: str = "初晴旗舰店", bad_rows: int = 3,
             fault_rate: float = FAULT_RATE) -> dict[str, int]:
    """Write a month of events for `shop` into the folder `out`; return rows written per file.

    `conversations_per_day` is the weekday baseline for the whole team (default 15 per
    agent); weekends and promotion days get more. `fault_rate` scales how often things go
    wrong: the default gives a shop as it really is (a handful of fines per agent a month,
    a sloppy agent more); 1.0 is the fine-dense month bench/bench.py uses, 1.5 the denser one
    of bench/shapes.py (up to MAX_FAULT_RATE). Files are
    replaced atomically.
    """
    if agents < 1:
        raise ValueError("agents must be at least 1")
    if bad_rows < 0:
        raise ValueError("bad_rows must be 0 or more")
    year, mon = parse_month(month)
    per_day = 15 * agents if conversations_per_day is None else conversations_per_day
    if per_day < 0:
        raise ValueError("conversations_per_day must be 0 or more")
    if not 0 <= fault_rate <= MAX_FAULT_RATE:
        raise ValueError(f"fault_rate must be between 0 and {MAX_FAULT_RATE}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return _Generator(out, year, mon, agents, per_day, seed, shop, bad_rows, fault_rate).run()


def parse_month(month: str) -> tuple[int, int]:
    try:
        start = Month.parse(month).start_local
    except LedgerError:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    return start.year, start.month


# --------------------------------------------------------------------------------------
# The team: accounts, quality profiles, roster
# --------------------------------------------------------------------------------------

class _Agent:
    __slots__ = ("index", "nick", "account", "care", "speed", "load")

    def __init__(self, index: int, shop: str, care: float, speed: float, load: float):
        self.index = index
        base = NICKNAMES[index % len(NICKNAMES)]
        self.nick = base if index < len(NICKNAMES) else f"{base}{index // len(NICKNAMES) + 1}"
        self.account = f"{shop}:{self.nick}"
        self.care = care  # multiplies every fault probability (sloppy > 1 > careful)
        self.speed = speed  # multiplies reply delays
        self.load = load  # share of the conversations routed to this agent


def _make_team(rng: random.Random, n: int, shop: str, fault_rate: float = 1.0) -> list[_Agent]:
    sloppy: list[int] = rng.sample(range(n), max(1, round(n * 0.2))) if n >= 3 else []
    rest = [i for i in range(n) if i not in sloppy]
    star = rng.choice(rest) if n >= 4 else -1
    team = []
    for i in range(n):
        if i in sloppy:
            team.append(_Agent(i, shop, care=3.0 * fault_rate, speed=1.5, load=0.9))
        elif i == star:
            team.append(_Agent(i, shop, care=0.3 * fault_rate, speed=0.7, load=1.2))
        else:
            team.append(_Agent(i, shop, care=1.0 * fault_rate, speed=1.0, load=1.0))
    return team


def _make_roster(n_agents: int, n_days: int, promo: dict[int, float]) -> list[tuple[list[int], list[int]]]:
    """Per day: (early shift 08-16, late shift 16-24) agent indices. Teams swap weekly;
    in a team of three or more each member has one day off a week, none on promo days."""
    team_a = list(range(0, n_agents, 2))
    team_b = list(range(1, n_agents, 2)) or team_a
    roster = []
    for d in range(n_days + 1):
        early, late = (team_a, team_b) if (d // 7) % 2 == 0 else (team_b, team_a)
        roster.append((_on_duty(early, d, promo), _on_duty(late, d, promo)))
    return roster


def _on_duty(team: list[int], day: int, promo: dict[int, float]) -> list[int]:
    if len(team) < 3 or (day + 1) in promo:
        return list(team)
    return [a for j, a in enumerate(team) if (day + 3 * j) % 7 != 0]


# --------------------------------------------------------------------------------------
# One conversation as a timeline
# --------------------------------------------------------------------------------------

class _Faults:
    """What goes wrong in one conversation (drawn from the agent's care factor)."""

    __slots__ = ("rude_start", "rude_end", "short", "vague", "slow_turn", "no_reply", "reask", "card",
                 "oos_bad", "scenario")

    def __init__(self, rng: random.Random, care: float, peak: bool, scenario: str):
        def p(base: float) -> bool:
            return rng.random() < min(0.9, base * care)

        self.scenario = scenario  # "", "insult", "sarcasm", "away"
        self.rude_start = p(0.02)
        self.rude_end = p(0.025)
        self.short = p(0.03)
        self.vague = p(0.02)
        if scenario == "away":
            self.slow_turn = 0  # the agent was away when the buyer came in
        else:
            self.slow_turn = rng.randint(0, 2) if p(0.035 * (1.5 if peak else 1.0)) else -1
        self.no_reply = p(0.003) and scenario == ""  # planned scenarios play out in full
        self.reask = "ok" if not p(0.45) else ("early" if rng.random() < 0.2 else "none")
        r = rng.random()
        self.card = "ok" if r >= min(0.9, 0.07 * care) else ("late" if r < 0.05 * care else "never")
        self.oos_bad = p(0.035)


class _Talk:
    """Messages of one conversation, appended in strictly increasing time."""

    def __init__(self, rng: random.Random, start: int, pace: float, faults: _Faults):
        self.rng = rng
        self.t = start
        self.pace = pace
        self.faults = faults
        self.msgs: list[tuple[int, str, str, str]] = []  # (ts, sender, kind, text)
        self.waiting: int | None = None  # first buyer message not yet answered by a human
        self.turn = -1  # index of the latest human reply to a buyer turn
        self.last_answer = start
        self.slow_minutes = 0
        self.short_text = ""

    def _add(self, ts: int, sender: str, kind: str, text: str) -> None:
        if self.msgs and ts <= self.t:
            ts = self.t + 1
        self.t = ts
        self.msgs.append((ts, sender, kind, text))

    def buyer(self, text: str, gap: tuple[int, int] = (8, 90)) -> None:
        ts = self.t + (self.rng.randint(*gap) if self.msgs else 0)
        kind = "image" if text == IMAGE else "text"
        self._add(ts, "buyer", kind, text)
        if self.waiting is None:
            self.waiting = ts

    def buyer_card(self, text: str) -> None:
        self._add(self.t, "buyer", "product_card", text)
        if self.waiting is None:
            self.waiting = self.t

    def ask(self, parts: tuple[str, ...], gap: tuple[int, int] = (8, 90)) -> None:
        """A buyer turn of one or more messages."""
        self.buyer(parts[0], gap)
        for part in parts[1:]:
            self.buyer(part, (3, 20))

    def auto(self, text: str) -> None:
        self._add(self.t + self.rng.randint(1, 3), "agent", "auto_reply", text)

    def system(self, text: str) -> None:
        self._add(self.t + self.rng.randint(3, 30), "system", "text", text)

    def reply(self, text: str, kind: str = "text", polite: bool = True) -> None:
        """The agent's reply to the waiting buyer turn (slow if this is the slow turn).
        A polite agent apologises for a slow reply; a rude one does not."""
        base = self.waiting if self.waiting is not None else self.t
        self.turn += 1
        if self.turn == self.faults.slow_turn:
            if self.faults.scenario == "away":
                delay = self.rng.randint(8 * MIN, 25 * MIN)
            elif self.rng.random() < 0.03:
                delay = 5 * MIN  # exactly on the limit: still in time
            else:
                delay = self.rng.randint(5 * MIN + 1, 20 * MIN)
            self.slow_minutes = delay // MIN
            if polite and kind == "text" and delay > 5 * MIN:
                text = SLOW_PREFIX + text
        else:
            delay = min(280, max(4, int(self.rng.lognormvariate(3.3, 0.65) * self.pace)))
        self._add(max(base + delay, self.t + 2), "agent", kind, text)
        self.waiting = None
        self.last_answer = self.t

    def follow(self, text: str, kind: str = "text", gap: tuple[int, int] = (3, 25)) -> None:
        """An agent message right after the agent's previous one."""
        self._add(self.t + self.rng.randint(*gap), "agent", kind, text)

    def respond(self, text: str, kind: str = "text") -> None:
        if self.waiting is not None:
            self.reply(text, kind)
        else:
            self.follow(text, kind)

    def at(self, ts: int, sender: str, kind: str, text: str) -> None:
        self._add(ts, sender, kind, text)


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

class _Generator:
    def __init__(self, out: Path, year: int, mon: int, n_agents: int, per_day: int, seed: int, shop: str,
                 bad_rows: int, fault_rate: float = 1.0):
        self.out = out
        self.rng = random.Random(seed)
        self.shop = shop
        self.n_days = calendar.monthrange(year, mon)[1]
        # Event ids carry the month, so two sample months can sit in events/ together; 2024-05,
        # the tutorial's month, keeps its plain ids (the docs quote them).
        self.id_tag = "" if (year, mon) == (2024, 5) else f"{year % 100:02d}{mon:02d}"
        first = dt.date(year, mon, 1)
        self.first_weekday = first.weekday()
        self.day_str = [(first + dt.timedelta(days=d)).isoformat() for d in range(self.n_days + 2)]
        self.month_end = self.n_days * DAY
        self.limit = self.month_end + SPILL  # nothing is written at or after this
        self.promo = PROMO_DAYS.get(mon, {})
        self.team = _make_team(self.rng, n_agents, shop, fault_rate)
        self.roster = _make_roster(n_agents, self.n_days, self.promo)
        self.counts = self._daily_counts(per_day)
        self.scenarios = self._plan_rare(sum(self.counts))
        self.bad_rows = bad_rows
        self.buyers: list[str] = []
        self.order_seq = 0
        self.last_paid: tuple | None = None  # newest paid order without a refund

    # ---- calendar ------------------------------------------------------------------

    def fmt_ts(self, t: int) -> str:
        d, r = divmod(t, DAY)
        h, r = divmod(r, HOUR)
        m, s = divmod(r, MIN)
        return f"{self.day_str[d]} {h:02d}:{m:02d}:{s:02d}"

    def _daily_counts(self, per_day: int) -> list[int]:
        counts = []
        for d in range(self.n_days):
            f = 1.25 if (self.first_weekday + d) % 7 >= 5 else 1.0
            f *= self.promo.get(d + 1, 1.0) * self.rng.uniform(0.9, 1.1)
            counts.append(max(0, round(per_day * f)))
        return counts

    def _plan_rare(self, total: int) -> dict[int, str]:
        """Pick which conversations carry the very rare events, so every month has some."""
        plan: dict[int, str] = {}
        if total == 0:
            return plan
        wanted = (("insult", max(1, round(total / 2000))), ("sarcasm", max(1, round(total / 4000))),
                  ("away", max(1, round(total / 1200))))
        for name, n in wanted:
            for _ in range(min(n, total - len(plan))):
                i = self.rng.randrange(total)
                while i in plan:
                    i = self.rng.randrange(total)
                plan[i] = name
        return plan

    def on_duty(self, t: int) -> list[int]:
        d, sec = divmod(t, DAY)
        if sec < 8 * HOUR:  # after midnight: the late shift of the day before stays on
            return self.roster[max(0, d - 1)][1] if d > 0 else self.roster[0][0]
        return self.roster[min(d, self.n_days)][0 if sec < 16 * HOUR else 1]

    def _agent_at(self, t: int, prefer: _Agent | None = None) -> _Agent:
        duty = self.on_duty(t)
        if prefer is not None and prefer.index in duty:
            return prefer
        return self.team[self.rng.choice(duty)]

    # ---- main loop -----------------------------------------------------------------

    def run(self) -> dict[str, int]:
        bad = self._bad_plan()
        self.sinks: dict[str, Sink] = {}
        with contextlib.ExitStack() as stack:  # every file appears complete, or not at all
            tmp = {name: stack.enter_context(atomic_path(self.out / name)) for name in FILES}
            stack.callback(lambda: [sink.file.close() for sink in self.sinks.values()])
            self.sinks = {name: Sink(tmp[name], name, self.fmt_ts, bad[name], self.id_tag) for name in FILES}
            self._month()
            counts = {name: sink.close() for name, sink in self.sinks.items()}
        for name in FILES:  # temporary files are private; the exports are ordinary files
            (self.out / name).chmod(0o644)
        return counts

    def _bad_plan(self) -> dict[str, list[tuple[int, str, int]]]:
        plan: dict[str, list[tuple[int, str, int]]] = {name: [] for name in FILES}
        for k in range(self.bad_rows):
            name, kind = BAD_CYCLE[k % len(BAD_CYCLE)]
            plan[name].append(((k + 1) * self.month_end // (self.bad_rows + 1), kind, k + 1))
        return plan

    def _month(self) -> None:
        index = 0
        for d in range(self.n_days):
            self._shifts(d)
            if d == self.n_days - 1:
                self._midnight_refund()
            for start in self._starts(d):
                self._flush(start)
                self._conversation(index, start)
                index += 1

    def _flush(self, upto: int) -> None:
        for sink in self.sinks.values():
            sink.flush(upto)

    def _starts(self, d: int) -> list[int]:
        hours = self.rng.choices(HOURS, HOUR_WEIGHTS, k=self.counts[d])
        starts = [d * DAY + h * HOUR + self.rng.randrange(HOUR) for h in hours]
        if d == self.n_days - 1 and self.counts[d]:  # a few late chats run into the next month
            starts += [self.month_end - self.rng.randint(30, 12 * MIN) for _ in range(3)]
        return sorted(starts)

    def push(self, name: str, ts: int, fields: tuple) -> None:
        if ts < self.limit:
            self.sinks[name].push(ts, fields)

    # ---- shifts --------------------------------------------------------------------

    def _shifts(self, d: int) -> None:
        early, late = self.roster[d]
        base = d * DAY
        for shift, members, start, end in ((0, early, 8 * HOUR, 16 * HOUR), (1, late, 16 * HOUR, 24 * HOUR)):
            for j, a in enumerate(members):
                agent = self.team[a]
                clock_in = start - self.rng.randint(0, 300)
                if self.rng.random() < 0.05:
                    clock_in = start + self.rng.randint(60, 600)  # came in late
                self.push("shifts.csv", base + clock_in, ("shift_start", agent.account, "", ""))
                if shift == 0:
                    clock_out = end + self.rng.randint(-120, 300)
                    successor = self.team[late[j % len(late)]].account if late else ""
                else:
                    clock_out = end - self.rng.randint(15, 400)  # the day's last shift ends before midnight
                    successor = ""
                handover = "false" if self.rng.random() < 0.025 * agent.care else "true"
                self.push("shifts.csv", base + clock_out, ("shift_end", agent.account, handover, successor))

    # ---- one conversation ----------------------------------------------------------

    def _conversation(self, index: int, start: int) -> None:
        rng = self.rng
        scenario = self.scenarios.get(index, "")
        duty = self.on_duty(start)
        agent = self._route(duty, scenario)
        d, sec = divmod(start, DAY)
        hour = sec // HOUR
        peak = hour in PEAK_HOURS or (d + 1) in self.promo
        pace = agent.speed * (1.6 if hour in PEAK_HOURS else 1.0) * (1.4 if (d + 1) in self.promo else 1.0)
        faults = _Faults(rng, agent.care, peak, scenario)
        talk = _Talk(rng, start, pace, faults)
        conv = f"c{self.day_str[d].replace('-', '')}{index:06d}"
        buyer = self._buyer()
        orders: list[tuple[int, str]] = []
        outcome = self._script(talk, agent, buyer, orders, start)
        self._rating(talk, agent, conv, buyer, outcome, bool(orders))
        for ts, sender, kind, text in talk.msgs:
            self.push("messages.csv", ts, ("message", agent.account, conv, buyer, sender, kind, text))
        self._qa(talk, agent, conv, bool(orders))

    def _route(self, duty: list[int], scenario: str) -> _Agent:
        if scenario in ("insult", "sarcasm"):
            sloppy = [a for a in duty if self.team[a].care > 1.0]
            if sloppy:
                return self.team[self.rng.choice(sloppy)]
        return self.team[self.rng.choices(duty, [self.team[a].load for a in duty])[0]]

    def _buyer(self) -> str:
        if self.buyers and self.rng.random() < 0.15:
            return self.rng.choice(self.buyers)
        nick = f"tb{self.rng.randint(10**9, 10**10 - 1)}"
        if len(self.buyers) < 500:
            self.buyers.append(nick)
        else:
            self.buyers[self.rng.randrange(500)] = nick
        return nick

    def _vars(self, agent: _Agent) -> dict[str, object]:
        rng = self.rng
        name, price, material, colors = rng.choice(PRODUCTS)
        other = rng.choice([p for p in PRODUCTS if p[0] != name])
        color, color2 = (rng.sample(colors, 2) if len(colors) > 1 else (colors[0], colors[0]))
        province, city, district = rng.choice(PLACES)
        return {
            "shop": self.shop, "nick": agent.nick, "product": name, "price": _yuan(price), "cents": price,
            "material": material, "color": color, "color2": color2, "size": rng.choice(SIZES),
            "height": rng.randint(150, 175), "weight": rng.randint(85, 140), "city": city,
            "province": province, "district": district, "other": other[0], "other_price": _yuan(other[1]),
            "cheap": price // 100 - rng.choice((20, 30, 40)), "name": rng.choice(SURNAMES) + "**",
        }

    def _script(self, talk: _Talk, agent: _Agent, buyer: str, orders: list, start: int) -> str:
        """Play the conversation; return how it ended ("closed", "silent", "abandoned", "angry")."""
        rng, f = self.rng, talk.faults
        v = self._vars(agent)
        after_sales = f.scenario == "" and rng.random() < 0.06
        topics = ["after_sales"] if after_sales else self._topics(rng.choices((1, 2, 3, 4), (40, 35, 20, 5))[0])
        n_topics = len(topics)
        turns = [self._question(topic, v) for topic in topics]
        short_at = rng.randrange(n_topics) if f.short else -1
        vague_at = rng.randrange(n_topics) if f.vague else -1
        no_reply_at = rng.randrange(n_topics) if f.no_reply else -1

        # Opening turn: a link, a hello, or straight to the first question.
        r = rng.random()
        if r < 0.25:
            talk.buyer_card(PRODUCT_CARD.format(**v))
        elif r < 0.6:
            talk.buyer(rng.choice(BUYER_OPENERS))
        asked = r >= 0.6 or rng.random() < 0.5
        if asked:
            talk.ask(turns[0][0], gap=(3, 20))
        if rng.random() < 0.6:
            talk.auto(rng.choice(AUTO_REPLIES).format(**v))
            if not asked and rng.random() < 0.5:
                talk.ask(turns[0][0], gap=(5, 30))
                asked = True
        if no_reply_at == 0:
            talk.buyer(rng.choice(BUYER_NUDGES), gap=(60, 200))
            return "abandoned"
        if short_at == 0:
            talk.reply(rng.choice(GREETINGS_SHORT), polite=False)
            talk.short_text = talk.msgs[-1][3]
        elif f.rude_start:
            talk.reply(rng.choice(GREETINGS_RUDE), polite=False)
        else:
            talk.reply(rng.choice(GREETINGS).format(**v))

        for i, topic in enumerate(topics):
            if f.scenario in ("insult", "sarcasm") and i == 1:
                break
            if i == no_reply_at:
                talk.ask(turns[i][0])
                talk.buyer(rng.choice(BUYER_NUDGES), gap=(60, 200))
                return "abandoned"
            self._topic(talk, topic, turns[i], v, asked=(i == 0 and asked), short=(i == short_at > 0),
                        vague=(i == vague_at))
            if rng.random() < 0.12:
                talk.follow(rng.choice(RECOMMEND).format(**v), gap=(5, 40))
                talk.follow(PRODUCT_CARD.format(**{**v, "product": v["other"], "price": v["other_price"]}),
                            kind="product_card")

        if f.scenario in ("insult", "sarcasm"):
            provocation, insults, sarcasm = rng.choice(CONFRONTATIONS)
            talk.ask((provocation.format(**v),))
            talk.reply(rng.choice(insults if f.scenario == "insult" else sarcasm), polite=False)
            talk.short_text = talk.msgs[-1][3]
            talk.buyer(rng.choice(BUYER_ANGRY), gap=(10, 60))
            return "angry"

        if after_sales:
            return self._close(talk)
        ending = rng.random()
        convert = 0.27 + (0.08 if (start // DAY + 1) in self.promo else 0.0)
        if ending < convert:
            talk.ask((rng.choice(BUYER_BUY),))
            talk.reply(rng.choice(("好的亲，您拍下后我马上为您核对订单", "亲，好的，拍下后我为您核对订单信息哦")))
            self._order(talk, agent, buyer, v, orders)
            return self._close(talk)
        if ending < convert + 0.15:
            return self._silence(talk, agent, buyer, v, orders)
        return self._close(talk)

    def _topics(self, n: int) -> list[str]:
        """n different topics, the common ones more often."""
        topics: list[str] = []
        for _ in range(4 * n):
            topic = self.rng.choices(TOPIC_NAMES, TOPIC_WEIGHTS)[0]
            if topic not in topics:
                topics.append(topic)
                if len(topics) == n:
                    break
        return topics

    def _question(self, topic: str, v: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """A buyer turn on `topic` and the good answers to it (none for stock: see _stock)."""
        if topic == "stock":
            question, answers = self.rng.choice(STOCK_QUESTIONS), ()
        else:
            question, answers = self.rng.choice(AFTER_SALES if topic == "after_sales" else ASK[topic])
        return tuple(part.format(**v) for part in question), answers

    def _topic(self, talk: _Talk, topic: str, turn: tuple, v: dict, *, asked: bool, short: bool,
               vague: bool) -> None:
        """The buyer's question on `topic` (unless already asked) and the agent's answer."""
        rng = self.rng
        question, answers = turn
        if not asked:
            talk.ask(question)
        if short and talk.waiting is not None:
            talk.reply(rng.choice(SHORT_REPLIES), polite=False)
            talk.short_text = talk.msgs[-1][3]
            return
        if vague:
            talk.respond(rng.choice(VAGUE_REPLIES))
            return
        if topic == "stock":
            self._stock(talk, v)
            return
        talk.respond(rng.choice(answers).format(**v))

    def _stock(self, talk: _Talk, v: dict) -> None:
        rng = self.rng
        if rng.random() >= 0.35:
            talk.respond(rng.choice(STOCK_IN).format(**v))
            return
        picks = rng.sample([p for p in PRODUCTS if p[0] != v["product"]], 2)
        cards = [PRODUCT_CARD.format(shop=self.shop, product=p[0], price=_yuan(p[1])) for p in picks]
        if talk.faults.oos_bad:
            talk.respond(rng.choice(STOCK_OUT_BAD).format(**v))
            if rng.random() < 0.5:  # recommends only afterwards
                for card in cards:
                    talk.follow(card, kind="product_card")
            return
        talk.respond(rng.choice(STOCK_INTRO))
        for card in cards:
            talk.follow(card, kind="product_card", gap=(3, 15))
        talk.follow(rng.choice(STOCK_AFTER_CARDS).format(**v), gap=(5, 30))

    def _close(self, talk: _Talk) -> str:
        rng = self.rng
        talk.ask((rng.choice(BUYER_THANKS),), gap=(10, 150))
        closings = CLOSINGS_RUDE if talk.faults.rude_end else CLOSINGS
        talk.reply(rng.choice(closings), polite=not talk.faults.rude_end)
        return "closed"

    def _silence(self, talk: _Talk, agent: _Agent, buyer: str, v: dict, orders: list) -> str:
        """The buyer goes quiet after an answer; a good agent asks again 10-20 minutes later."""
        rng, f = self.rng, talk.faults
        if f.reask == "none":
            return "silent"
        if f.reask == "early":
            talk.at(talk.last_answer + rng.randint(5 * MIN, 9 * MIN), "agent", "text", rng.choice(REASKS))
        else:
            talk.at(talk.last_answer + rng.randint(10 * MIN + 5, 20 * MIN - 5), "agent", "text", rng.choice(REASKS))
        if rng.random() < 0.25:
            talk.ask((rng.choice(BUYER_BACK),), gap=(2 * MIN, 15 * MIN))
            talk.reply("好的亲，收到您的订单我马上为您核对")
            self._order(talk, agent, buyer, v, orders, announced=False)
            return self._close(talk)
        return "silent"

    # ---- orders and refunds --------------------------------------------------------

    def _order(self, talk: _Talk, agent: _Agent, buyer: str, v: dict, orders: list, announced: bool = True) -> None:
        rng, f = self.rng, talk.faults
        placed = talk.t + rng.randint(20, 180)
        self.order_seq += 1
        order = str(3_700_000_000_000_000_000 + self.order_seq * 1_000_003 + rng.randrange(1_000_000))
        qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
        cents = v["cents"] * qty
        cents -= next((c for limit, c in ((39900, 4000), (19900, 2000), (9900, 500)) if cents >= limit), 0)
        amount = _yuan(cents)
        self.push("orders.csv", placed, ("order_placed", agent.account, buyer, order, amount))
        orders.append((placed, order))

        talk.t = placed
        said = announced and rng.random() < 0.8
        if said:
            talk.ask((rng.choice(BUYER_ORDERED),), gap=(5, 40))
        card = ORDER_CARD.format(**{**v, "qty": qty, "amount": amount})
        if f.card == "ok":
            if said:
                talk.reply(card, kind="order_card")
            else:
                talk.at(placed + rng.randint(20, 400), "agent", "order_card", card)
            talk.follow(rng.choice(ORDER_CONFIRM))
        elif f.card == "late":
            if said:
                talk.reply(rng.choice(ORDER_ACK_LATE))
            talk.at(max(placed + rng.randint(10 * MIN + 10, 30 * MIN), talk.t + 2), "agent", "order_card", card)
            talk.follow(rng.choice(ORDER_CONFIRM))
        elif said:
            talk.reply(rng.choice(ORDER_ACK_NONE))

        if rng.random() < 0.92:
            paid = placed + min(15 * MIN, max(8, int(rng.lognormvariate(4.2, 1.0))))
            self.push("orders.csv", paid, ("order_paid", agent.account, buyer, order, amount))
            self._maybe_refund(paid, agent, buyer, order, cents, qty, v)
        else:
            talk.follow(rng.choice(PAY_CHASE), gap=(5 * MIN, 10 * MIN))

    def _maybe_refund(self, paid: int, agent: _Agent, buyer: str, order: str, cents: int, qty: int, v: dict) -> None:
        rng = self.rng
        if rng.random() >= 0.1:
            self.last_paid = (paid, agent, buyer, order, cents)
            return
        reason, _, (lo, hi) = rng.choices(REFUND_REASONS, [r[1] for r in REFUND_REASONS])[0]
        asked = _working_time(paid + rng.randint(lo, hi), rng)
        if asked >= self.month_end:
            return
        refund = cents if qty == 1 or reason in ("多拍/拍错/不想要", "不想要了", "重拍", "未按约定时间发货") else v["cents"]
        on_duty = self._agent_at(asked, prefer=agent)
        self.push("refunds.jsonl", asked, ("refund_requested", on_duty.account, buyer, order, reason, _yuan(refund)))
        r = rng.random()
        # The refund queue is watched by the whole team: even a careful month has a slow refund
        # now and then (at least a quarter of the dense month's rate).
        care = max(on_duty.care, 0.25)
        if r < 0.03 * care:
            return  # never handled
        if r < 0.11 * care:  # late: later that day, or the next morning
            handled = _working_time(asked + rng.randint(31 * MIN, 4 * HOUR), rng)
        else:
            handled = asked + min(30 * MIN, max(20, int(rng.lognormvariate(6.0, 0.8))))
        self.push("refunds.jsonl", handled, ("refund_handled", self._agent_at(handled, prefer=on_duty).account,
                                             "", order, "", ""))

    def _midnight_refund(self) -> None:
        """A refund asked for at 23:50 on the month's last day and handled at 00:10 after it."""
        if self.last_paid is None:
            return
        _, agent, buyer, order, cents = self.last_paid
        asked = self.month_end - 10 * MIN
        on_duty = self._agent_at(asked, prefer=agent)
        self.push("refunds.jsonl", asked, ("refund_requested", on_duty.account, buyer, order, "多拍/拍错/不想要",
                                           _yuan(cents)))
        self.push("refunds.jsonl", asked + 20 * MIN, ("refund_handled", on_duty.account, "", order, "", ""))
        self.last_paid = None

    # ---- writing a finished conversation, ratings and QA findings ------------------

    def _rating(self, talk: _Talk, agent: _Agent, conv: str, buyer: str, outcome: str, converted: bool) -> None:
        """Some conversations end with the platform's rating invitation, and some buyers rate."""
        rng, f = self.rng, talk.faults
        bad = f.scenario != "" or outcome == "abandoned" or f.slow_turn >= 0 or f.short
        if outcome in ("closed", "silent") and rng.random() < 0.3:
            talk.system(SYSTEM_INVITE)
            if rng.random() < (0.8 if converted else 0.6):
                weights = (15, 10, 15, 20, 40) if bad else (1, 1, 3, 10, 85)
                score = rng.choices((1, 2, 3, 4, 5), weights)[0]
                self.push("ratings.csv", talk.t + rng.randint(20, 30 * MIN),
                          ("rating", agent.account, buyer, conv, str(score)))
        elif outcome == "angry" and rng.random() < 0.8:
            self.push("ratings.csv", talk.t + rng.randint(60, 20 * MIN), ("rating", agent.account, buyer, conv, "1"))

    def _qa(self, talk: _Talk, agent: _Agent, conv: str, converted: bool) -> None:
        rng, f = self.rng, talk.faults
        category = ""
        if f.scenario == "away":
            category = "未挂离开"
        elif f.scenario == "sarcasm":
            category = "顶撞买家"
        elif talk.short_text and rng.random() < 0.15:
            category = "态度冷淡"
        elif f.vague and rng.random() < 0.2:
            category = "回复不规范"
        elif converted and f.slow_turn < 0 and not (f.rude_start or f.rude_end) and rng.random() < 0.01:
            category = "优秀接待"
        if not category:
            return
        note = QA_NOTES[category].format(minutes=talk.slow_minutes, text=talk.short_text)
        start = talk.msgs[0][0]
        review = _working_time(talk.t + rng.randint(1 * HOUR, 5 * HOUR), rng)
        review = min(review, self.month_end - rng.randint(60, 20 * MIN))  # reviewed within the month
        self.push("qa.csv", max(review, start), ("qa_flag", agent.account, conv, category, note))


def _working_time(t: int, rng: random.Random) -> int:
    """Move a moment outside 08:00-23:40 to the next morning, when buyers' requests reach an agent."""
    d, sec = divmod(t, DAY)
    if sec < 8 * HOUR:
        return d * DAY + 8 * HOUR + rng.randrange(90 * MIN)
    if sec >= 23 * HOUR + 40 * MIN:
        return (d + 1) * DAY + 8 * HOUR + rng.randrange(90 * MIN)
    return t


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
