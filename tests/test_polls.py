"""Class polls: short unambiguous codes, members counted once, one vote per member (a revote replaces it), tallies in
option order, the reveal, expiry, and that any question can be pushed as a poll."""

from __future__ import annotations

import threading

import pytest

from tl_core.classroom.polls import (CODE_ALPHABET, CODE_LENGTH, ClassClosed, ClassRegistry, Poll, get_registry,
                                     race_poll, race_poll_id, reveal_line, valid_code)
from tl_core.classroom.presets import PRESETS, parse_scenario, share_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


QUIZ = Poll("quiz:1", "Which layers are the most generic?", ("early", "late"), ("The early layers", "The late ones"))


def test_codes_are_short_and_unambiguous_and_links_carry_them():
    reg = ClassRegistry()
    codes = {reg.open_class() for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) and valid_code(code)
        assert reg.is_open(code) and reg.is_open(code.lower())  # typed in any case
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert not reg.is_open("ZZZZZ") and not valid_code("ab") and not valid_code("O0O0O")
    code = next(iter(codes))
    url = share_url("http://x:8501", "bn_trap", 3, class_code=code.lower())
    assert url.endswith(f"class={code}")
    assert parse_scenario({"class": code.lower(), "preset": "BN_TRAP"}).class_code == code
    assert "not a class code" in parse_scenario({"class": "!!"}).problems[0]


def test_members_are_counted_once_and_votes_replace_each_other():
    reg = ClassRegistry()
    code = reg.open_class()
    for member in ("a", "b", "c", "a"):  # "a" reloads: the same token, still one member
        reg.join(code, member)
    assert reg.members(code) == 3
    reg.push(code, QUIZ)
    assert reg.current(code) == QUIZ
    assert reg.tally(code, QUIZ.id) == {"early": 0, "late": 0}  # every option, in option order
    reg.vote(code, QUIZ.id, "a", "late")
    reg.vote(code, QUIZ.id, "b", "early")
    reg.vote(code, QUIZ.id, "a", "early")  # a revote replaces the first answer
    assert reg.tally(code, QUIZ.id) == {"early": 2, "late": 0}
    assert list(reg.tally(code, QUIZ.id)) == ["early", "late"]
    assert reg.vote_of(code, QUIZ.id, "a") == "early" and reg.vote_of(code, QUIZ.id, "c") is None
    with pytest.raises(ValueError, match="not an answer"):
        reg.vote(code, QUIZ.id, "c", "middle")
    with pytest.raises(ValueError, match="Join the class"):
        reg.vote(code, QUIZ.id, "stranger", "early")
    with pytest.raises(ValueError, match="no poll"):
        reg.vote(code, "quiz:2", "a", "early")
    assert reg.tally(code, "quiz:2") == {}


def test_any_question_can_be_a_poll_and_a_pushed_poll_keeps_its_votes():
    reg = ClassRegistry()
    code = reg.open_class()
    reg.join(code, "a")
    trap = race_poll(PRESETS["bn_trap"], 4)
    assert trap.id == race_poll_id("bn_trap", 4) and trap.options == ("bn_keep", "bn_reestimate")
    assert trap.labels == tuple(lane.label for lane in PRESETS["bn_trap"].lanes)
    reg.push(code, trap)
    reg.vote(code, trap.id, "a", "bn_reestimate")
    reg.push(code, QUIZ)  # another engineer's quiz question, pushed through the same API
    assert reg.current(code) == QUIZ
    reg.push(code, trap)  # back to the race: the class's answers are still there
    assert reg.tally(code, trap.id) == {"bn_keep": 0, "bn_reestimate": 1}
    with pytest.raises(ValueError, match="two options"):
        Poll("p", "Why?", ("only",), ("Only",))
    with pytest.raises(ValueError, match="one label per option"):
        Poll("p", "Why?", ("a", "b"), ("A",))


def test_the_reveal_counts_who_predicted_the_winner():
    reg = ClassRegistry()
    code = reg.open_class()
    poll = race_poll(PRESETS["few_similar"], 0)
    reg.push(code, poll)
    for i, pick in enumerate(["finetune_all"] * 14 + ["scratch"] * 13):
        reg.join(code, f"m{i}")
        reg.vote(code, poll.id, f"m{i}", pick)
    assert reg.answer(code, poll.id) is None
    reg.reveal(code, poll.id, "finetune_all")
    assert reg.answer(code, poll.id) == "finetune_all"
    line = reveal_line(reg.tally(code, poll.id), "finetune_all", poll.label("finetune_all"))
    assert line == "Fine-tune all layers won: 14 of 27 predicted it."
    with pytest.raises(ValueError):
        reg.reveal(code, poll.id, "nobody")


def test_classes_expire_after_their_time():
    clock = Clock()
    reg = ClassRegistry(ttl_s=4 * 3600, clock=clock)
    code = reg.open_class()
    reg.join(code, "a")
    reg.push(code, QUIZ)
    clock.now += 4 * 3600 - 1
    assert reg.is_open(code) and reg.expires_in(code) == pytest.approx(1)
    clock.now += 1
    assert not reg.is_open(code) and reg.members(code) == 0 and reg.current(code) is None
    assert reg.tally(code, QUIZ.id) == {}
    with pytest.raises(ClassClosed):
        reg.join(code, "b")
    with pytest.raises(ClassClosed):
        reg.vote(code, QUIZ.id, "a", "early")


def test_the_registry_is_thread_safe_and_process_wide():
    reg = ClassRegistry()
    code = reg.open_class()
    reg.push(code, QUIZ)

    def student(i: int) -> None:
        reg.join(code, f"s{i}")
        for option in ("late", "early", "late"):
            reg.vote(code, QUIZ.id, f"s{i}", option)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reg.members(code) == 40 and reg.tally(code, QUIZ.id) == {"early": 0, "late": 40}
    assert get_registry() is get_registry()
