"""The scenario questions (tl_core.teaching.questions): every keyed answer is the one the library's own decision
functions give, every option explains itself, every runnable answer names a preset or sweep that measures it, and a
learner's progress survives its trip through the URL and into the summary to hand in."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tl_core.classroom.presets import BN_KEEP, BN_REESTIMATE, get_preset
from tl_core.teaching import questions as Q
from tl_core.teaching.matrix import ALL_ANSWERS, Answers, classify
from tl_core.teaching.quadrant import SIMILARITIES, SIZES, classify_similarity, classify_size, recommend
from tl_core.training.plan import make_plan
from tl_core.training.records import Evaluation, RunResult

ROOT = Path(__file__).resolve().parents[1]
IDS = [q.id for q in Q.QUESTIONS]


# ---- the set of questions ------------------------------------------------------------------------------------------
def test_at_least_25_questions_across_the_five_pages_and_8_runnable():
    assert len(Q.QUESTIONS) >= 25
    per_page = {page: len(Q.questions_for(page)) for page in Q.PAGES}
    assert set(per_page) == {"welcome", "matrix", "quadrant", "race", "architectures"}
    assert min(per_page.values()) >= 4, per_page
    assert sum(q.run is not None for q in Q.QUESTIONS) >= 8
    assert {q.pick for q in Q.QUESTIONS} == {None, "matrix", "quadrant"}  # both page widgets are used


def test_ids_are_unique_short_and_name_their_page():
    assert len(set(IDS)) == len(IDS)
    for q in Q.QUESTIONS:
        assert re.fullmatch(r"[a-z][0-9]{1,2}", q.id), q.id
        assert q.id[0] == q.page[0], (q.id, q.page)
        assert Q.get_question(q.id) is q
    with pytest.raises(ValueError, match="Unknown question"):
        Q.get_question("z9")
    with pytest.raises(ValueError, match="Unknown page"):
        Q.questions_for("train")


# ---- content and logic cannot drift apart ---------------------------------------------------------------------------
@pytest.mark.parametrize("qid", IDS)
def test_the_keyed_answer_is_what_the_librarys_decision_function_gives(qid: str):
    q = Q.get_question(qid)
    assert q.check.fn in Q.CHECKS
    assert Q.derive(q) == q.answer
    q.option(q.answer)  # and it is one of the options


def test_a_changed_decision_would_be_caught():
    """derive really reads the decision functions: other situations give other answers."""
    hospital = Q.get_question("q1")
    little = Q.Question("q99", "quadrant", "?", hospital.options, hospital.answer,
                        Q.Check("plan_summary", (("n_per_class", 20), ("similarity", "different"), ("arch", "resnet18"))))
    assert Q.derive(little) == "early_classifier:stem,layer1"
    assert Q.CHECKS["matrix_setting"](source_labels=False, target_labels=True, same_domain=True,
                                      same_task=False) == "self_taught"
    assert Q.CHECKS["boundary"](n_per_class=500) == "clear"
    assert Q.CHECKS["plan_valid"](strategy="finetune_top", frozen=("block1",)) == "valid"
    assert Q.CHECKS["frozen_bn"](bn_policy="eval") == "fixed"  # the playbook's default keeps frozen BatchNorm fixed
    assert Q.CHECKS["shapes_change"](similarity=1.0) == "task"  # four new shapes, drawn in the source's style
    with pytest.raises(ValueError, match="unknown check"):
        Q.derive(Q.Question("q98", "quadrant", "?", hospital.options, hospital.answer, Q.Check("nope")))


def test_numbers_in_the_architecture_explanations_are_measured():
    from tl_core.models.demos import stack_vs_large
    from tl_core.models.summary import summarize, trainable_params

    vgg = summarize("vgg16")
    share = trainable_params(vgg, make_plan("finetune_top", arch="vgg16", freeze_first=5)) / vgg.params
    assert 0.85 <= share < 0.95 and 0.05 < 1 - share < 0.15  # "about nine in ten"; the frozen blocks "about a tenth"
    ratio = summarize("resnet50").params / summarize("densenet121").params
    assert 2.5 <= ratio <= 3.5  # "about three times DenseNet-121's parameters"
    r = stack_vs_large(64)
    assert (r.stack_params, r.large_params) == (27 * 64 * 64, 49 * 64 * 64)  # 27 against 49 per pair of channels
    from tl_core.models.demos import VANISHED, gradient_flow

    assert gradient_flow(40, skip=False, batch_norm=False).first_layer < VANISHED  # "all but disappears" without BN


# ---- every option explains itself ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("qid", IDS)
def test_every_option_has_its_own_explanation(qid: str):
    q = Q.get_question(qid)
    keys = [o.key for o in q.options]
    assert len(keys) >= 2 and len(set(keys)) == len(keys)
    assert len({o.explanation for o in q.options}) == len(q.options)  # none is a copy of another
    for o in q.options:
        assert o.label.strip() and len(o.explanation) >= 40, (q.id, o.key)
    assert len(q.prompt) >= 40 and q.prompt.rstrip().endswith("?")


def test_matrix_picks_cover_every_setting_and_give_a_reason_per_answer():
    picks = [q for q in Q.QUESTIONS if q.pick == "matrix"]
    assert len(picks) >= 3
    reachable = {classify(a.source_labels, a.target_labels, a.same_domain, a.same_task).key for a in ALL_ANSWERS}
    for q in picks:
        assert {o.key for o in q.options} == reachable  # whatever the learner sets, it is an option
        assert dict(q.reasons).keys() == set(Q.MATRIX_FIELDS) and all(len(r) > 20 for _, r in q.reasons)
        for a in ALL_ANSWERS:
            lines = Q.pick_feedback(q, a)
            differs = [f for f in Q.MATRIX_FIELDS if getattr(a, f) != getattr(q.keyed_answers, f)]
            assert len(lines) == len(differs)  # one sentence per answer that does not fit the situation
    q = Q.get_question("m1")
    wrong = Answers(source_labels=True, target_labels=False, same_domain=True, same_task=True)
    assert Q.matrix_option(wrong) == "sample_selection_bias"
    (line,) = Q.pick_feedback(q, wrong)
    assert line.startswith("**The same domain?** You answered yes; here it is no.") and "phone snapshots" in line


def test_quadrant_picks_offer_the_four_cells():
    picks = [q for q in Q.QUESTIONS if q.pick == "quadrant"]
    assert len(picks) >= 2
    cells = {Q.cell_key(size, sim) for size in SIZES for sim in SIMILARITIES}
    for q in picks:
        assert {o.key for o in q.options} == cells
        for o in q.options:  # each cell's lane is the strategy the course advises there
            assert o.lane == recommend(*o.key.split("_")).strategy
    assert Q.quadrant_option(20, 0.3) == "little_different" and Q.quadrant_option(100, "similar") == "lots_similar"
    with pytest.raises(ValueError):
        Q.quadrant_option(0, 0.5)


def test_where_course_and_literature_differ_the_note_says_so_with_a_source():
    noted = [q for q in Q.QUESTIONS if q.note]
    assert len(noted) >= 8
    for q in noted:  # a source, or it says the playbook's own rule is meant
        assert re.search(r"\b(19|20)\d\d\b|CS231n|the playbook's", q.note), (q.id, q.note)
    # the places the curriculum map lists: scratch for lots + different, the domain definition, multi-task vs
    # sequential transfer, the plan's departure for little + different, fixed features for VGG and for few labels
    assert "He et al. (2019" in Q.get_question("q1").note and "He et al. (2019" in Q.get_question("r4").note
    assert "P(X)" in Q.get_question("m2").note and "sequential" in Q.get_question("m3").note
    assert "fine-tune model weights" in Q.get_question("q3").note
    assert "CS231n" in Q.get_question("a1").note and "CS231n" in Q.get_question("r1").note


# ---- answers you can run ---------------------------------------------------------------------------------------------
RUNNABLE = [q.id for q in Q.QUESTIONS if q.run is not None]


@pytest.mark.parametrize("qid", RUNNABLE)
def test_a_runnable_answer_names_a_preset_or_sweep_whose_cell_fits_the_situation(qid: str):
    from tl_core.experiments.lab import LAB_STRATEGIES, SIMILARITY_CHOICES, SIZE_CHOICES, LabConfig

    q = Q.get_question(qid)
    run = q.run
    assert run.kind in Q.RUN_KINDS and run.expect in Q.EXPECTS
    if run.kind == "race":
        preset = get_preset(run.preset)
        lanes = set(preset.lane_keys)
        cells = [(preset.n_per_class, preset.similarity)]
        assert all(o.lane in lanes for o in q.options if o.lane is not None)  # a pick becomes the prediction
        assert run.title == f"the race \"{preset.title}\""
    else:
        config = LabConfig(sizes=run.sizes, similarities=run.similarities, strategies=run.strategies).validate()
        assert set(run.sizes) <= set(SIZE_CHOICES) and set(run.similarities) <= set(SIMILARITY_CHOICES)
        assert set(run.strategies) <= set(LAB_STRATEGIES)  # the lab page's widgets can show this sweep
        lanes = set(config.strategies)
        cells = [(n, s) for n in run.sizes for s in run.similarities]
    advice = {recommend(classify_size(n), classify_similarity(s)).strategy for n, s in cells}
    assert len(advice) == 1  # one cell of the quadrant
    if run.expect == "winner":
        assert q.keyed.lane in lanes and q.keyed.lane in advice  # the analogue measures the course's advice
    elif run.expect == "pretrained_vs_scratch":
        assert {o.key for o in q.options} <= {"pretrained", "scratch", "same"} and "scratch" in lanes
        assert q.answer == ("scratch" if advice == {"scratch"} else "pretrained")
    else:
        assert {BN_KEEP, BN_REESTIMATE} <= lanes


# ---- judging what a run measured -----------------------------------------------------------------------------------
def _result(strategy: str, acc: float, *, drift=None, bn_drift=None, frozen=(), **plan) -> RunResult:
    ev = Evaluation(accuracy=acc, loss=0.5, per_class={}, confusion=[], top_losses=[], classes=())
    return RunResult("finished", "done", make_plan(strategy, **plan).to_dict(), ("block1", "head"), tuple(frozen),
                     evaluation=ev, drift=drift or {}, bn_drift=bn_drift or {})


def test_a_race_that_agrees_and_one_that_contradicts_are_both_shown():
    q = Q.get_question("r1")  # keyed: fine-tune only the final layers
    agree = Q.judge_race(q, {"feature_extract": _result("feature_extract", 0.88),
                             "finetune_top": _result("finetune_top", 0.935),
                             "finetune_all": _result("finetune_all", 0.83), "scratch": _result("scratch", 0.36)},
                         pick="scratch", seed=4)
    assert agree.agrees is True
    assert agree.text.startswith("Measured in the race \"Few and similar\", seed 4: Fine-tune only the final layers "
                                 "(94%) came first; your pick, Re-train from scratch, reached 36%.")
    contra = Q.judge_race(q, {"feature_extract": _result("feature_extract", 0.95),
                              "finetune_top": _result("finetune_top", 0.90), "scratch": _result("scratch", 0.4)})
    assert contra.agrees is False
    assert "Fixed feature extraction (95%) came first; the keyed answer, Fine-tune only the final layers, reached " \
           "90% (-5.0 points)" in contra.text and "contradicts the keyed answer" in contra.text
    tie = Q.judge_race(q, {"feature_extract": _result("feature_extract", 0.91),
                           "finetune_top": _result("finetune_top", 0.90)})
    assert tie.agrees is True and "a tie" in tie.text
    nothing = Q.judge_race(q, {"scratch": _result("scratch", 0.4)})
    assert nothing.agrees is None


def test_pretrained_against_scratch_reads_every_pretrained_lane():
    q = Q.get_question("r4")  # keyed: scratch, the course's advice for lots + different
    results = {"feature_extract": _result("feature_extract", 0.6), "finetune_all": _result("finetune_all", 0.97),
               "scratch": _result("scratch", 0.9)}
    m = Q.judge_race(q, results)
    assert m.agrees is False and "Fine-tune all layers (97%), against Re-train from scratch (90%): +7.0 points" \
                                 in m.text
    results["scratch"] = _result("scratch", 0.98)
    assert Q.judge_race(q, results).agrees is False  # +1 point is a tie, not scratch doing better
    results["scratch"] = _result("scratch", 0.995)
    assert Q.judge_race(q, results).agrees is True


def test_the_batchnorm_trap_is_judged_by_the_frozen_groups_statistics():
    q = Q.get_question("r3")
    frozen = ("block1", "block2", "block3")
    keep = _result("finetune_top", 0.8, frozen=frozen, drift=dict.fromkeys(frozen, 0.0),
                   bn_drift=dict.fromkeys(frozen, 0.0))
    moved = _result("finetune_top", 0.81, frozen=frozen, drift=dict.fromkeys(frozen, 0.0),
                    bn_drift={"block1": 0.04, "block2": 0.34, "block3": 0.26}, bn_policy="train")
    m = Q.judge_race(q, {BN_KEEP: keep, BN_REESTIMATE: moved})
    assert m.agrees is True and "changed by up to 34% while their weights moved by 0" in m.text
    still = _result("finetune_top", 0.81, frozen=frozen, bn_drift=dict.fromkeys(frozen, 0.0), bn_policy="train")
    assert Q.judge_race(q, {BN_KEEP: keep, BN_REESTIMATE: still}).agrees is False


def test_a_sweep_is_judged_on_its_cell_averaged_over_seeds():
    from tl_core.experiments.lab import LaneDone

    q = Q.get_question("q1")  # keyed: scratch
    lanes = [LaneDone(200, 0.25, seed, s, acc, 1.0) for seed, s, acc in (
        (0, "scratch", 0.9), (1, "scratch", 0.8), (0, "finetune_all", 0.95), (1, "finetune_all", 0.9),
        (0, "feature_extract", 0.5), (1, "feature_extract", 0.5), (0, "scratch", 0.1))[:6]]
    lanes.append(LaneDone(20, 0.25, 0, "scratch", 0.99, 1.0))  # another cell: not counted
    m = Q.judge_sweep(q, lanes)
    assert m.agrees is False
    assert m.text.startswith("Measured in the quadrant lab (200 images per class, similarity 0.25, seeds 0 and 1): "
                             "Fine-tune all layers (92%) came first; the keyed answer, Re-train from scratch, reached "
                             "85% (-7.5 points)")
    with pytest.raises(ValueError, match="not measured by a sweep"):
        Q.judge_sweep(Q.get_question("r1"), lanes)


# ---- progress: the URL and the summary ---------------------------------------------------------------------------------
def _some_progress() -> dict[str, Q.Attempt]:
    p: dict[str, Q.Attempt] = {}
    p = Q.record(p, "w1", "Hindi sentences")  # right first time
    p = Q.record(p, "m3", "transductive")  # wrong ...
    p = Q.record(p, "m3", "inductive")  # ... then right
    p = Q.record(p, "q1", "finetune_all:none")  # wrong
    return p


def test_record_keeps_the_first_answer_and_counts_tries():
    p = _some_progress()
    assert p["m3"] == Q.Attempt("transductive", "inductive", 2) and p["w1"] == Q.Attempt("Hindi sentences",
                                                                                          "Hindi sentences", 1)
    assert Q.score(p) == Q.Score(answered=3, first_try=1, correct_now=2, total=len(Q.QUESTIONS))
    assert Q.score(p, "matrix") == Q.Score(1, 0, 1, len(Q.questions_for("matrix")))
    with pytest.raises(ValueError, match="has no option"):
        Q.record(p, "w1", "Urdu")


def test_progress_round_trips_through_the_compact_url_text():
    p = _some_progress()
    text = Q.encode_progress(p)
    assert text == "1.w1aa1.m3ba2.q1bb1"
    assert Q.decode_progress(text) == p
    assert Q.encode_progress({}) == "" and Q.decode_progress("") == {}
    every = {}
    for q in Q.QUESTIONS:  # every question, every option position
        every = Q.record(every, q.id, q.options[-1].key)
        every = Q.record(every, q.id, q.answer)
    assert Q.decode_progress(Q.encode_progress(every)) == every


@pytest.mark.parametrize("text", ["2.w1aa1", "1.w1aa", "1.w1aa0", "1.z9aa1", "1.w1za1", "1.w1aa1.w1aa1",
                                  "1.w1aa1.<script>", "x"])
def test_damaged_saved_answers_are_refused_whole_with_a_message(text: str):
    with pytest.raises(ValueError, match="not restored"):
        Q.decode_progress(text)


def test_the_summary_holds_the_answers_as_json_and_csv():
    p = _some_progress()
    measured = {"q1": "Measured in the quadrant lab: ..."}
    data = json.loads(Q.summary_json(p, measured))
    assert (data["answered"], data["first_try_correct"], data["correct_now"], data["total"]) == (3, 1, 2,
                                                                                                len(Q.QUESTIONS))
    rows = {r["question"]: r for r in data["questions"]}
    assert set(rows) == set(IDS)
    assert rows["m3"] == {**rows["m3"], "first_answer": "Transductive transfer learning", "first_try_correct": False,
                          "latest_answer": "Inductive transfer learning", "latest_correct": True, "tries": 2}
    assert rows["q1"]["measured"] == measured["q1"] and rows["q1"]["keyed_answer"].startswith("Re-train from scratch")
    assert rows["w2"]["keyed_answer"] == "" and rows["w2"]["tries"] == 0  # no answer key for unanswered questions
    table = list(csv.DictReader(io.StringIO(Q.summary_csv(p, measured))))
    assert [r["question"] for r in table] == IDS and tuple(table[0]) == Q.SUMMARY_COLUMNS
    m3 = next(r for r in table if r["question"] == "m3")
    assert (m3["first_try_correct"], m3["latest_correct"], m3["tries"]) == ("False", "True", "2")


# ---- class polls ----------------------------------------------------------------------------------------------------------
def test_every_question_can_be_pushed_as_a_class_poll():
    polls = pytest.importorskip("tl_core.classroom.polls")
    for q in Q.QUESTIONS:
        poll = polls.Poll(*Q.poll_spec(q))
        assert poll.options == tuple(o.key for o in q.options) and "**" not in poll.prompt
        assert Q.question_of_poll(poll.id) is q
    assert Q.question_of_poll("race:few_similar:0") is None and Q.question_of_poll("quiz:z9") is None


def test_the_questions_and_the_quiz_view_import_neither_torch_nor_pandas():
    code = ("import sys, tl_core.teaching.questions, ui.quiz; "
            "print('torch' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]
