"""Every house rule's boundaries, as hand-computed cases.

Each case is a small event list and the exact set of entries it must produce:
(rule id, charged agent, trigger event id, status, amount). The same table drives two
tests: `test_oracle[...]` pins tests/oracle.py to the hand-computed expectations, and
`test_engine[...]` runs the shipped policy through ledger.engine.run_month.

Meanings: /work/shared/spec/house-rules.md; details: docs/decisions.md.

Most cases use a polite skeleton so that only the event under test can break a rule:
the conversation opens and closes with an honorific, every buyer turn is answered in
time, answers are long enough, and every answer is followed by a buyer message or is a
closing. `END` (a `status` event on 06-05) puts the data end beyond every deadline, so
nothing is pending unless a case leaves it out on purpose.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import pytest

from conftest import POLICY, write_events
from ledger.evaluate.engine import run_month
from ledger.evaluate.evidence import LONG_WHEN
from oracle import NO_AGENT, oracle

WANG = "店:小王"
LI = "店:小李"

GREET = "亲，欢迎光临本店"  # an agent opening: honorific, not an answer
POLITE = "亲，您好，请问有什么可以帮您？"  # a fine answer: honorific, long, not a closing
BYE = "感谢您的支持，祝您生活愉快"  # a closing answer: honorific, exempt from rule 8


# ---------------------------------------------------------------- event builders

def T(when: str) -> str:
    """"10:00:30" → 2024-05-15 10:00:30; "05-31 23:50:00" → 2024-05-31 23:50:00."""
    if len(when) == 8:
        return f"2024-05-15 {when}"
    if len(when) == 14:
        return f"2024-{when}"
    return when


def ev(id: str, when: str, type: str, **fields) -> dict:
    """An event; a field given as None is left out (missing)."""
    event = {"id": id, "ts": T(when), "type": type}
    for name, value in fields.items():
        if value is not None:
            event[name] = value
    return event


def B(id, when, text, conv="c1", agent=WANG, buyer="b1"):
    """A buyer message. `agent` is the shop account receiving it (charged for rule 3)."""
    return ev(id, when, "message", conversation=conv, agent=agent, buyer=buyer,
              sender="buyer", kind="text", text=text)


def A(id, when, text, kind=None, conv="c1", agent=WANG, buyer="b1"):
    """An agent message; kind None leaves the column out (which means text)."""
    return ev(id, when, "message", conversation=conv, agent=agent, buyer=buyer,
              sender="agent", kind=kind, text=text)


def S(id, when, text, conv="c1"):
    """A system message."""
    return ev(id, when, "message", conversation=conv, sender="system", text=text)


END = ev("end", "06-05 00:00:00", "status")


def around(x: dict, extra_before: list[dict] = ()) -> list[dict]:
    """A polite conversation in which `x` (at 10:00:30) answers the buyer's question;
    `extra_before` goes between the greeting and the question."""
    return [
        A("a0", "09:59:00", GREET),
        *extra_before,
        B("b1", "10:00:00", "这款有货吗"),
        x,
        B("b2", "10:01:00", "还在吗"),
        A("a2", "10:01:30", BYE),
        END,
    ]


# ---------------------------------------------------------------- expected entries

# Rules marked `confirm` in the shipped policy: their lines wait for a person (待复核), with
# the amount they will charge once confirmed.
CONFIRM_RULES = {"缺货直答", "顶撞买家"}


def fine(rule: str, agent: str, event_id: str, amount: str) -> tuple:
    return (rule, agent, event_id, "to_confirm" if rule in CONFIRM_RULES else "applied", Decimal(amount))


def pending(rule: str, agent: str, event_id: str) -> tuple:
    return (rule, agent, event_id, "pending", None)


class Case(NamedTuple):
    name: str
    events: list[dict]
    expected: set[tuple]


CASES: list[Case] = []


def case(name: str, events: list[dict], *expected: tuple) -> None:
    CASES.append(Case(name, list(events), set(expected)))


# ---------------------------------------------------------------- 1 敬语 (10元)

case("r1_polite_conversation_has_no_entries", around(A("x", "10:00:30", POLITE)))

case("r1_first_and_last_agent_text_without_honorific", [
    B("b1", "10:00:00", "在吗"),
    A("a1", "10:00:30", "在的，有什么问题"),  # first: no honorific
    B("b2", "10:01:00", "这款有货吗"),
    A("a2", "10:01:30", "有货的，放心拍"),  # middle: not checked
    B("b3", "10:02:00", "好的"),
    A("a3", "10:02:30", "好的，再见啦朋友"),  # last: no honorific (a closing, so no rule 8)
    END,
], fine("敬语", WANG, "a1", "10"), fine("敬语", WANG, "a3", "10"))

case("r1_single_agent_text_is_first_and_last_fined_once", [
    A("a1", "10:00:00", "在的，发货了哈"),
    END,
], fine("敬语", WANG, "a1", "10"))

case("r1_only_text_messages_count_and_empty_kind_is_text", [
    A("p1", "09:59:50", "新款连衣裙", kind="product_card"),  # not text: not first
    A("au", "09:59:55", "自动回复：稍等", kind="auto_reply"),  # not text
    A("a1", "10:00:00", "亲，这是新款", kind=""),  # first text message: has 亲
    A("a2", "10:00:10", "这款很好卖的"),  # no kind column: text, the last, no honorific
    END,
], fine("敬语", WANG, "a2", "10"))

case("r1_first_and_last_are_per_conversation", [
    A("a1", "10:00:00", "亲，您好", conv="c1"),
    A("a2", "10:00:10", "在的，发货了哈", conv="c2", agent=LI),
    A("a3", "10:00:20", "亲，发货了", conv="c1"),
    END,
], fine("敬语", LI, "a2", "10"))

case("r1_missing_agent_is_charged_to_placeholder", [
    A("a1", "10:00:00", "在的，发货了哈", agent=None),
    END,
], fine("敬语", NO_AGENT, "a1", "10"))

case("r1_missing_text_has_no_honorific", [
    A("a1", "10:00:00", None),
    END,
], fine("敬语", WANG, "a1", "10"))

case("r1_no_conversation_each_message_is_its_own_sequence", [
    A("m1", "10:00:00", "在的，发货了哈", conv=None),
    A("m2", "10:00:10", "亲，发货了", conv=None),
    END,
], fine("敬语", WANG, "m1", "10"))

case("r1_april_first_excluded_may_last_fined", [
    A("a0", "04-30 23:59:59", "在的哈朋友"),
    A("a1", "05-01 00:00:00", "明天就到了哈"),
    END,
], fine("敬语", WANG, "a1", "10"))

case("r1_may_first_fined_june_last_excluded", [
    A("a1", "05-31 23:59:00", "在的，发货了哈"),
    A("a2", "06-01 00:00:30", "明天就到了哈"),
    END,
], fine("敬语", WANG, "a1", "10"))


# ---------------------------------------------------------------- 2 短语回复 (10元)

def short(name: str, text: str | None, fined: bool) -> None:
    expected = [fine("短语回复", WANG, "x", "10")] if fined else []
    case(name, around(A("x", "10:00:30", text)), *expected)


short("r2_two_chars_fined", "嗯嗯", True)
short("r2_four_chars_fined", "好的好的", True)
short("r2_five_chars_not_fined", "有货的亲亲", False)
short("r2_five_chars_of_fillers_only_fined", "好的呢亲亲", True)
short("r2_only_interjections_five_chars_fined", "嗯嗯嗯嗯嗯", True)
short("r2_only_interjections_with_punctuation_fined", "不知道啊！！", True)
short("r2_only_interjections_with_inner_spaces_fined", "嗯 嗯 嗯", True)
short("r2_interjection_plus_other_words_not_fined", "嗯嗯，有货的", False)
short("r2_fillers_and_particles_only_fined", "嗯嗯，好的呢", True)
short("r2_stickers_only_fined", "[微笑][微笑]", True)
short("r2_a_picture_is_not_a_short_answer", "[图片]", False)
short("r2_a_polite_hold_is_not_a_short_answer", "请您稍等", False)
short("r2_surrounding_spaces_stripped_fined", "  好的好的  ", True)
short("r2_ideographic_spaces_stripped_fined", "\u3000好的好的\u3000", True)
short("r2_inner_spaces_count_not_fined", "有 货 的 亲", False)
short("r2_trailing_newlines_only_stripped_fined", "好的好的\n\n", True)
short("r2_leading_tab_only_stripped_not_fined", "\t有货的亲亲", False)
short("r2_missing_text_has_length_0_fined", None, True)

case("r2_auto_reply_is_not_an_answer",
     around(A("x", "10:00:30", "嗯", kind="auto_reply")))

case("r2_product_card_is_not_an_answer",
     around(A("x", "10:00:30", "嗯", kind="product_card")))

case("r2_an_auto_reply_in_between_does_not_hide_the_answer", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "这款有货吗"),
    A("au", "10:00:05", "您好，客服马上就来", kind="auto_reply"),
    A("x", "10:00:30", "嗯嗯"),  # answers the buyer: the robot's line is not part of the talk
    B("b2", "10:01:00", "还在吗"),
    A("a2", "10:01:30", BYE),
    END,
], fine("短语回复", WANG, "x", "10"))

case("r2_courtesy_reply_to_thanks_not_fined", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "好的，谢谢"),
    A("x", "10:00:30", "不客气哦"),
    END,
])

case("r2_short_ack_when_the_buyer_asked_nothing_not_fined", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "我再考虑一下"),
    A("x", "10:00:30", "好的呢"),
    B("b2", "10:01:00", "嗯"),
    A("a2", "10:01:30", BYE),
    END,
])

case("r2_same_second_later_in_input_is_an_answer", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "这款有货吗"),
    A("x", "10:00:00", "嗯嗯"),
    B("b2", "10:01:00", "还在吗"),
    A("a2", "10:01:30", BYE),
    END,
], fine("短语回复", WANG, "x", "10"))

case("r2_r3_same_second_earlier_in_input_is_neither_answer_nor_reply", [
    A("a0", "09:59:00", GREET),
    A("x", "10:00:00", "嗯嗯"),  # before b1 in (ts, input order)
    B("b1", "10:00:00", "在吗"),
    A("a2", "10:06:00", BYE),  # the only reply after b1: 6 minutes
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r2_may_answer_to_april_question", [
    A("a0", "04-30 23:57:00", GREET),
    B("b1", "04-30 23:58:00", "在吗"),
    A("x", "05-01 00:00:10", "嗯嗯"),
    B("b2", "05-01 00:01:00", "还在吗"),
    A("a2", "05-01 00:01:30", BYE),
    END,
], fine("短语回复", WANG, "x", "10"))


# ---------------------------------------------------------------- 3 回复超时 (20元)

def turn_answered_at(name: str, reply_at: str, fined: bool) -> None:
    expected = [fine("回复超时", WANG, "b1", "20")] if fined else []
    case(name, [
        A("a0", "09:59:00", GREET),
        B("b1", "10:00:00", "在吗"),
        A("a1", reply_at, POLITE),
        B("b2", "10:06:00", "好的"),
        A("a2", "10:06:30", BYE),
        END,
    ], *expected)


turn_answered_at("r3_reply_at_exactly_5_00_in_time", "10:05:00", False)
turn_answered_at("r3_reply_at_5_01_late", "10:05:01", True)
turn_answered_at("r3_reply_at_4_59_in_time", "10:04:59", False)
turn_answered_at("r3_reply_half_a_second_late", "2024-05-15 10:05:00.5", True)
turn_answered_at("r3_reply_with_offset_at_5_00_in_time", "2024-05-15T02:05:00+00:00", False)

case("r3_several_buyer_messages_in_one_turn_fined_once", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    B("b1b", "10:00:30", "有人吗"),
    B("b1c", "10:00:50", "？？？"),
    A("a1", "10:06:00", POLITE),
    B("b2", "10:07:00", "好的"),
    A("a2", "10:07:30", BYE),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_auto_reply_is_not_a_reply", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    A("au", "10:00:05", "您好，客服马上就来", kind="auto_reply"),
    A("a1", "10:05:30", POLITE),  # not an answer: its previous message is the auto reply
    B("b2", "10:06:00", "好的"),
    A("a2", "10:06:30", BYE),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_buyer_message_after_auto_reply_starts_a_new_turn", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    A("au", "10:00:05", "您好，客服马上就来", kind="auto_reply"),
    B("b1b", "10:01:00", "有人吗"),  # a new turn: its previous message is not the buyer's
    A("a1", "10:05:30", POLITE),  # 5:30 after b1 (late), 4:30 after b1b (in time)
    B("b2", "10:06:00", "好的"),
    A("a2", "10:06:30", BYE),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_system_message_also_separates_turns", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    S("sys", "10:00:10", "系统提示：买家已下单"),
    B("b1b", "10:00:20", "有人吗"),
    A("a1", "10:05:10", POLITE),  # 5:10 after b1, 4:50 after b1b
    B("b2", "10:06:00", "好的"),
    A("a2", "10:06:30", BYE),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_product_card_is_a_reply", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    A("p1", "10:01:00", "相似款", kind="product_card"),
    END,
])

case("r3_reply_in_another_conversation_does_not_count", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    A("a1", "10:01:00", "亲，您好", conv="c2", agent=LI),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_no_reply_at_all", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_data_ends_before_deadline_pending", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    ev("st", "10:04:59", "status"),
], pending("回复超时", WANG, "b1"))

case("r3_data_ends_exactly_at_deadline_fined", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗"),
    ev("st", "10:05:00", "status"),
], fine("回复超时", WANG, "b1", "20"))

case("r3_buyer_message_without_agent_charged_to_placeholder", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "在吗", agent=None),
    END,
], fine("回复超时", NO_AGENT, "b1", "20"))

case("r3_buyer_message_without_conversation_never_matches_a_reply", [
    B("b1", "10:00:00", "在吗", conv=None),
    A("a1", "10:00:30", POLITE, conv=None),
    END,
], fine("回复超时", WANG, "b1", "20"))

case("r3_april_turn_excluded_may_turn_fined", [
    A("a0", "04-30 23:50:00", GREET),
    B("b1", "04-30 23:58:00", "在吗"),  # answered 6:00 later, but in April
    A("a1", "05-01 00:04:00", POLITE),
    B("b2", "05-01 00:05:00", "这款有货吗"),
    A("a2", "05-01 00:10:01", BYE),  # 5:01 after b2
    END,
], fine("回复超时", WANG, "b2", "20"))

case("r3_may_turn_answered_in_june_in_time", [
    A("a0", "05-31 23:50:00", GREET),
    B("b1", "05-31 23:58:00", "在吗"),
    A("a1", "06-01 00:02:00", BYE),
    END,
])

case("r3_june_turn_excluded", [
    A("a0", "05-31 23:50:00", GREET),
    B("b1", "06-01 00:00:00", "在吗"),
    END,
])


# ---------------------------------------------------------------- 4 未挂离开 (20元)

case("r4_qa_flags", [
    ev("q1", "10:00:00", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q2", "10:00:00", "qa_flag", agent=LI, category="其他"),
    ev("q3", "10:00:00", "qa_flag", category="未挂离开"),
    ev("q4", "10:00:00", "qa_flag", agent=LI),
    END,
], fine("未挂离开", WANG, "q1", "20"), fine("未挂离开", NO_AGENT, "q3", "20"))

case("r4_month_boundaries", [
    ev("q_apr", "04-30 23:59:59", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_start", "05-01 00:00:00", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_end", "05-31 23:59:59", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_jun", "06-01 00:00:00", "qa_flag", agent=WANG, category="未挂离开"),
], fine("未挂离开", WANG, "q_start", "20"), fine("未挂离开", WANG, "q_end", "20"))


case("r4_month_is_local_time_for_timestamps_with_offsets", [
    ev("q_apr", "2024-04-30T15:59:59+00:00", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_may", "2024-04-30T16:00:00+00:00", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_may2", "2024-06-01T00:00:00+09:00", "qa_flag", agent=WANG, category="未挂离开"),
    ev("q_jun", "2024-05-31T16:00:00+00:00", "qa_flag", agent=WANG, category="未挂离开"),
    END,
], fine("未挂离开", WANG, "q_may", "20"), fine("未挂离开", WANG, "q_may2", "20"))


# ---------------------------------------------------------------- 5 缺货直答 (10元)

def out_of_stock(name: str, cards: list[dict], fined: bool, cards_after: list[dict] = ()) -> None:
    """Agent-only conversation (no buyer messages): greeting, cards, x, cards_after, a9."""
    expected = [fine("缺货直答", WANG, "x", "10")] if fined else []
    case(name, [
        A("a0", "09:59:00", GREET),
        *cards,
        A("x", "09:59:30", "抱歉，这款卖完了"),
        *cards_after,
        A("a9", "09:59:40", "亲，还需要别的吗"),
        END,
    ], *expected)


def card(id, when, conv="c1", sender="agent"):
    return ev(id, when, "message", conversation=conv, agent=WANG, buyer="b1",
              sender=sender, kind="product_card", text="相似款推荐")


out_of_stock("r5_no_product_card_fined", [], True)
out_of_stock("r5_one_product_card_fined", [card("p1", "09:59:10")], True)
out_of_stock("r5_two_product_cards_not_fined",
             [card("p1", "09:59:10"), card("p2", "09:59:20")], False)
out_of_stock("r5_card_in_another_conversation_does_not_count",
             [card("p1", "09:59:10"), card("p2", "09:59:20", conv="c2")], True)
out_of_stock("r5_card_from_system_does_not_count",
             [card("p1", "09:59:10"), card("p2", "09:59:20", sender="system")], True)
out_of_stock("r5_card_after_does_not_count",
             [card("p1", "09:59:10")], True, cards_after=[card("p2", "09:59:35")])
out_of_stock("r5_card_same_second_earlier_in_input_counts",
             [card("p1", "09:59:10"), card("p2", "09:59:30")], False)
out_of_stock("r5_card_same_second_later_in_input_does_not_count",
             [card("p1", "09:59:10")], True, cards_after=[card("p2", "09:59:30")])

case("r5_every_out_of_stock_word", [
    A("a0", "09:59:00", GREET),
    A("x1", "09:59:10", "亲，暂时没有货"),
    A("x2", "09:59:20", "亲，缺货中"),
    A("x3", "09:59:30", "亲，没有这款哦"),
    A("x4", "09:59:40", "没货了亲"),
    A("a9", "09:59:50", "亲，还需要别的吗"),
    END,
], *[fine("缺货直答", WANG, x, "10") for x in ("x1", "x2", "x3", "x4")])

case("r5_buyer_saying_out_of_stock_is_not_fined", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "是不是没货了"),
    A("a1", "10:00:30", "亲，还有货的哦，放心拍"),
    B("b2", "10:01:00", "好的"),
    A("a2", "10:01:30", BYE),
    END,
])

case("r5_auto_reply_saying_out_of_stock_is_not_an_answer", [
    A("a0", "09:59:00", GREET),
    A("au", "09:59:30", "亲，该商品缺货", kind="auto_reply"),
    A("a9", "09:59:40", "亲，还需要别的吗"),
    END,
])

for number, text in enumerate(["亲，您的订单缺货了，给您退款", "有货的，不会没货", "亲，没有这款使用的优惠券哦",
                               "如果没货会第一时间通知您", "暂时缺货，可以选择黑檀木的",
                               "亲，这款卖完了 https://item.taobao.com/item.htm?id=1"]):
    case(f"r5_not_a_direct_no_{number}", [  # post-sale, negation, other meaning, hypothetical, alternatives
        A("a0", "09:59:00", GREET),
        A("x", "09:59:30", text),
        A("a9", "09:59:40", "亲，还需要别的吗"),
        END,
    ])

case("r5_two_links_count_as_two_recommendations", [
    A("a0", "09:59:00", GREET),
    A("l1", "09:59:10", "https://item.taobao.com/item.htm?id=1"),
    A("l2", "09:59:20", "亲看看这个 https://detail.tmall.com/item.htm?id=2"),
    A("x", "09:59:30", "亲，原款售罄了"),
    A("a9", "09:59:40", "亲，还需要别的吗"),
    END,
])


# ---------------------------------------------------------------- 6 核对订单 (10元)

def order(id, when, buyer="b1", agent=WANG):
    return ev(id, when, "order_placed", order="O1", buyer=buyer, agent=agent, amount="99.00")


def order_card(id, when, buyer="b1", sender="agent", kind="order_card"):
    return ev(id, when, "message", conversation="c1", agent=WANG, buyer=buyer,
              sender=sender, kind=kind, text="订单信息请核对")


case("r6_order_card_at_exactly_10_00",
     [order("o1", "10:00:00"), order_card("k1", "10:10:00"), END])

case("r6_order_card_at_10_01_late",
     [order("o1", "10:00:00"), order_card("k1", "10:10:01"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_order_card_to_another_buyer_does_not_count",
     [order("o1", "10:00:00"), order_card("k1", "10:01:00", buyer="b2"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_order_card_before_the_order_does_not_count",
     [order_card("k1", "09:59:00"), order("o1", "10:00:00"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_order_card_from_system_does_not_count",
     [order("o1", "10:00:00"), order_card("k1", "10:01:00", sender="system"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_text_message_is_not_an_order_card",
     [order("o1", "10:00:00"), order_card("k1", "10:01:00", kind="text"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_order_without_buyer_never_matches",
     [order("o1", "10:00:00", buyer=None), order_card("k1", "10:01:00"), END],
     fine("核对订单", WANG, "o1", "10"))

case("r6_order_without_agent_charged_to_placeholder",
     [order("o1", "10:00:00", agent=None), END],
     fine("核对订单", NO_AGENT, "o1", "10"))

case("r6_order_card_at_month_end_in_june_in_time",
     [order("o1", "05-31 23:55:00"), order_card("k1", "06-01 00:03:00"), END])

case("r6_data_ends_before_deadline_pending",
     [order("o1", "05-31 23:55:00"), ev("st", "06-01 00:04:59", "status")],
     pending("核对订单", WANG, "o1"))

case("r6_april_and_june_orders_excluded", [
    order("o_apr", "04-30 23:59:59"),
    order("o_may", "05-01 00:00:00"),
    order("o_jun", "06-01 00:00:00"),
    END,
], fine("核对订单", WANG, "o_may", "10"))


# ---------------------------------------------------------------- 7 顶撞买家 (100元)

for number, text in enumerate(["你是不是有病啊", "爱买不买，随便你", "神经病吧你这人",
                               "笨蛋才问这个问题", "你给我滚出去吧"]):
    case(f"r7_insult_word_{number}", around(A("x", "10:00:30", text)),
         fine("顶撞买家", WANG, "x", "100"))

# 滚 inside 滚动 / 财源滚滚 is cancelled by the list's exceptions; a 滚 outside them still counts.
case("r7_word_inside_an_exception_not_fined", around(A("x", "10:00:30", "亲，滚动页面看详情，祝您财源滚滚")))
case("r7_word_outside_the_exceptions_fined", around(A("x", "10:00:30", "财源滚滚个屁，滚")),
     fine("顶撞买家", WANG, "x", "100"))

case("r7_insult_in_auto_reply_counts",
     around(A("x", "10:00:30", "爱买不买", kind="auto_reply")),
     fine("顶撞买家", WANG, "x", "100"))

case("r7_buyer_insult_not_fined", [
    A("a0", "09:59:00", GREET),
    B("b1", "10:00:00", "你们客服有病吧"),
    A("a1", "10:00:30", POLITE),
    B("b2", "10:01:00", "还在吗"),
    A("a2", "10:01:30", BYE),
    END,
])

case("r7_qa_flag", [
    ev("q1", "10:00:00", "qa_flag", agent=LI, category="顶撞买家", conversation="c9"),
    END,
], fine("顶撞买家_质检", LI, "q1", "100"))

case("r7_insult_and_qa_flag_are_two_entries", [
    *around(A("x", "10:00:30", "你是不是有病啊")),
    ev("q1", "12:00:00", "qa_flag", agent=WANG, category="顶撞买家", conversation="c1"),
], fine("顶撞买家", WANG, "x", "100"), fine("顶撞买家_质检", WANG, "q1", "100"))


# ---------------------------------------------------------------- 8 未再次询问 (20元)

def answer_then(name: str, after: list[dict], outcome: str | None, x_text: str = "亲，有货的呢",
                end: dict | None = END) -> None:
    """b1 asks at 10:00:00, x answers at 10:00:30 (so its 10..20-minute window is
    10:10:30..10:20:30), then `after`. outcome: "fined", "pending" or None."""
    expected = {
        "fined": [fine("未再次询问", WANG, "x", "20")],
        "pending": [pending("未再次询问", WANG, "x")],
        None: [],
    }[outcome]
    events = [B("b1", "10:00:00", "这款有货吗"), A("x", "10:00:30", x_text), *after]
    if end is not None:
        events.append(end)
    case(name, events, *expected)


REASK = "亲，还在吗？"

answer_then("r8_no_follow_up_fined", [], "fined")
answer_then("r8_reask_at_9_59_does_not_count", [A("r", "10:10:29", REASK)], "fined")
answer_then("r8_reask_at_10_00", [A("r", "10:10:30", REASK)], None)
answer_then("r8_reask_at_20_00", [A("r", "10:20:30", REASK)], None)
answer_then("r8_reask_at_20_01_does_not_count", [A("r", "10:20:31", REASK)], "fined")
answer_then("r8_reask_by_product_card",
            [A("r", "10:15:30", "相似款", kind="product_card")], None)
answer_then("r8_reask_by_auto_reply_counts_as_agent_message",
            [A("r", "10:15:30", "亲，还在吗", kind="auto_reply")], None)
answer_then("r8_reask_in_another_conversation_does_not_count",
            [A("r", "10:15:30", REASK, conv="c2", agent=LI)], "fined")
answer_then("r8_buyer_reply_within_20_minutes",
            [B("b2", "10:05:30", "好的"), A("a2", "10:06:00", BYE)], None)
answer_then("r8_buyer_reply_at_19_59",
            [B("b2", "10:20:29", "好的"), A("a2", "10:20:40", BYE)], None)
answer_then("r8_buyer_reply_at_20_00",
            [B("b2", "10:20:30", "好的"), A("a2", "10:21:00", BYE)], None)
answer_then("r8_buyer_reply_at_20_01_too_late",
            [B("b2", "10:20:31", "好的"), A("a2", "10:21:00", BYE)], "fined")
answer_then("r8_buyer_reply_in_another_conversation_does_not_count",
            [B("b2", "10:05:30", "好的", conv="c2"), A("a2", "10:06:00", BYE, conv="c2")], "fined")
for number, closing in enumerate(["感谢您的支持", "再见", "祝您", "欢迎下次光临", "感谢光临"]):
    answer_then(f"r8_closing_answer_exempt_{number}", [], None, x_text=f"好的亲，{closing}哈")
answer_then("r8_data_ends_before_deadline_pending", [], "pending",
            end=ev("st", "10:20:29", "status"))
answer_then("r8_data_ends_exactly_at_deadline_fined", [], "fined",
            end=ev("st", "10:20:30", "status"))
answer_then("r8_reask_found_before_data_end", [A("r", "10:12:00", REASK)], None, end=None)

case("r8_may_answer_reask_in_june", [
    B("b1", "05-31 23:50:00", "这款有货吗"),
    A("x", "05-31 23:50:30", "亲，有货的呢"),
    A("r", "06-01 00:05:00", REASK),
    END,
])


# ---------------------------------------------------------------- 9 退款超时 (30元)

def refund(id, when, reason="多拍/拍错/不想要", order="O1", agent=WANG):
    return ev(id, when, "refund_requested", order=order, buyer="b1", agent=agent,
              reason=reason, amount="50.00")


def handled(id, when, order="O1"):
    return ev(id, when, "refund_handled", order=order, agent=WANG)


case("r9_handled_at_exactly_30_00",
     [refund("rf1", "10:00:00"), handled("rh1", "10:30:00"), END])

case("r9_handled_at_30_01_late",
     [refund("rf1", "10:00:00"), handled("rh1", "10:30:01"), END],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_never_handled", [refund("rf1", "10:00:00"), END],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_handled_for_another_order_does_not_count",
     [refund("rf1", "10:00:00"), handled("rh1", "10:10:00", order="O2"), END],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_handled_before_the_request_does_not_count",
     [handled("rh1", "09:59:00"), refund("rf1", "10:00:00"), END],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_refund_without_order_never_matches",
     [refund("rf1", "10:00:00", order=None), handled("rh1", "10:10:00", order=None), END],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_fined_reasons", [
    refund("rf1", "10:00:00", reason="多拍/拍错/不想要", order="O1"),
    refund("rf2", "10:00:00", reason="拍错了", order="O2"),
    refund("rf3", "10:00:00", reason="需要重拍", order="O3"),
    refund("rf4", "10:00:00", reason="多拍了一件", order="O4"),
    refund("rf5", "10:00:00", reason="不想买了", order="O5"),
    refund("rf6", "10:00:00", reason="不想要了", order="O6"),
    END,
], *[fine("退款超时", WANG, f"rf{n}", "30") for n in range(1, 7)])

case("r9_other_reasons_not_fined", [
    refund("rf1", "10:00:00", reason="质量问题", order="O1"),
    refund("rf2", "10:00:00", reason="尺码不合适", order="O2"),
    refund("rf3", "10:00:00", reason="7天无理由退换", order="O3"),
    refund("rf4", "10:00:00", reason=None, order="O4"),
    END,
])

case("r9_asked_05_31_23_50_handled_06_01_00_10_in_time",
     [refund("rf1", "05-31 23:50:00"), handled("rh1", "06-01 00:10:00"), END])

case("r9_never_handled_data_ends_before_deadline_pending",
     [refund("rf1", "05-31 23:50:00"), ev("st", "06-01 00:10:00", "status")],
     pending("退款超时", WANG, "rf1"))

case("r9_never_handled_data_ends_after_deadline_fined",
     [refund("rf1", "05-31 23:50:00"), ev("st", "06-01 00:30:00", "status")],
     fine("退款超时", WANG, "rf1", "30"))

case("r9_april_and_june_refunds_excluded", [
    refund("rf_apr", "04-30 23:50:00", order="O1"),
    refund("rf_may", "05-01 00:00:00", order="O2"),
    refund("rf_jun", "06-01 00:00:00", order="O3"),
    END,
], fine("退款超时", WANG, "rf_may", "30"))


# ---------------------------------------------------------------- 10 交接班 (30元 each)

def shift_end(id, handover, successor, agent=WANG, when="18:00:00"):
    return ev(id, when, "shift_end", agent=agent, handover=handover, successor=successor)


case("r10_missed_handover_fines_agent_and_successor",
     [shift_end("se1", "false", LI), END],
     fine("交接班", WANG, "se1", "30"), fine("交接班", LI, "se1", "30"))

case("r10_handover_made_not_fined", [shift_end("se1", "true", LI), END])

case("r10_boolean_spellings", [
    shift_end("se_true", "true", LI),
    shift_end("se_1", "1", LI),
    shift_end("se_yes", "是", LI),
    shift_end("se_false", "false", None),
    shift_end("se_0", "0", None),
    shift_end("se_no", "否", None),
    END,
], *[fine("交接班", WANG, s, "30") for s in ("se_false", "se_0", "se_no")])

case("r10_empty_successor_fines_only_agent",
     [shift_end("se1", "false", ""), END],
     fine("交接班", WANG, "se1", "30"))

case("r10_missing_successor_fines_only_agent",
     [shift_end("se1", "false", None), END],
     fine("交接班", WANG, "se1", "30"))

case("r10_missing_handover_counts_as_no",
     [shift_end("se1", None, LI), END],
     fine("交接班", WANG, "se1", "30"), fine("交接班", LI, "se1", "30"))

case("r10_successor_same_as_agent_charged_once",
     [shift_end("se1", "false", WANG), END],
     fine("交接班", WANG, "se1", "30"))

case("r10_missing_agent_charged_to_placeholder_and_successor",
     [shift_end("se1", "false", LI, agent=None), END],
     fine("交接班", NO_AGENT, "se1", "30"), fine("交接班", LI, "se1", "30"))

case("r10_june_shift_end_excluded",
     [shift_end("se1", "false", LI, when="06-01 00:00:00"), END])


# ---------------------------------------------------------------- the tests

def _ids(cases):
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return names


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_oracle(case: Case, assert_same_entries) -> None:
    assert_same_entries(oracle(case.events), case.expected, case.events, "the oracle")


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_engine(case: Case, run_engine, assert_same_entries) -> None:
    assert_same_entries(run_engine(case.events), case.expected, case.events, "the engine")


def test_event_ids_unique_in_every_case() -> None:
    for c in CASES:
        ids = [e["id"] for e in c.events]
        assert len(ids) == len(set(ids)), c.name


def test_interjections_with_a_tilde_count_as_only_interjections(run_engine):
    # 嗯嗯嗯嗯～ is five characters, so only the interjection test can catch it.
    events = [
        {"id": "b1", "ts": "2024-05-02 10:00:00", "type": "message", "agent": "店:甲", "conversation": "c1",
         "sender": "buyer", "text": "在吗"},
        {"id": "a1", "ts": "2024-05-02 10:00:30", "type": "message", "agent": "店:甲", "conversation": "c1",
         "sender": "agent", "kind": "text", "text": "嗯嗯嗯嗯～"},
    ]
    got = {(r, a, e) for r, a, e, *_ in run_engine(events)}
    assert ("短语回复", "店:甲", "a1") in got
    assert ("短语回复", "店:甲", "a1") in {(r, a, e) for r, a, e, *_ in oracle(events)}


def test_the_evidence_of_a_pattern_quotes_what_it_matched(tmp_path):
    """A `matches` test of the when: the evidence quotes the part of the text it matched, and a
    long condition is cut with a pointer to the rule (the statement's 依据 stays readable)."""
    events = [
        {"id": "b1", "ts": "2024-05-10 10:00:00", "type": "message", "conversation": "c1", "agent": "店:甲",
         "sender": "buyer", "text": "什么时候发货"},
        {"id": "a1", "ts": "2024-05-10 10:00:30", "type": "message", "conversation": "c1", "agent": "店:甲",
         "sender": "agent", "text": "不是说了明天发吗"},
    ]
    write_events(events, tmp_path / "events", "jsonl")
    result = run_month(policy_paths=[POLICY], events_root=tmp_path / "events", month="2024-05")
    (entry,) = [e for e in result.entries if e.rule_id == "顶撞买家"]
    assert "命中句式：「不是说了明天发吗」" in entry.evidence
    assert "…（条件原文见 " in entry.evidence and len(entry.evidence) < LONG_WHEN + 400
