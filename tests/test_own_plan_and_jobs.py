"""The own-images plan and jobs (tl_core.data.own, tl_core.training.planform, ui.charts.own_data, tl_core.jobs.work):
class names, all-or-nothing additions, sizes and default plans per architecture, the counts chart's takeaway,
previews, and a real background run on a learner-style dataset."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tl_core.data import own
from tl_core.training import planform
from ui.charts import own_data
from tl_core.jobs import work
from tl_core.training.history import what_ran
from tl_core.jobs.manager import JobManager
from tl_core.data.own import load_class_uploads
from tl_core.data.safe_io import Limits, UnsafeInput

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 60, 220)}


def png(colour: tuple[int, int, int], i: int, size: int = 40) -> bytes:
    """A small picture: a coloured disc on a light background, moved a little with i."""
    im = Image.new("RGB", (size, size), (235 - i, 235, 230 + i % 5))
    d = ImageDraw.Draw(im)
    o = 4 + i % 5
    d.ellipse([o, o, o + 24, o + 24], fill=colour)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def uploads(n: int = 8) -> dict[str, list[tuple[str, bytes]]]:
    return {c: [(f"{c}{i}.png", png(rgb, i)) for i in range(n)] for c, rgb in COLOURS.items()}


def test_class_names_are_checked() -> None:
    assert own.check_class_name("  mugs ", ["cups"]) == "mugs"
    for bad, match in (("", "Type a name"), ("Cups", "already a class called 'Cups'"), ("a/b", "slashes"),
                       ("x" * 41, "at most 40")):
        with pytest.raises(ValueError, match=match):
            own.check_class_name(bad, ["cups"])
    with pytest.raises(ValueError, match="already 20 classes"):
        own.check_class_name("one more", [f"c{i}" for i in range(20)])


def test_additions_are_refused_whole_when_a_limit_would_break() -> None:
    limits = Limits(max_files=5, max_file_bytes=100, max_total_bytes=250)
    own.check_additions([[("a", b"x" * 50)]], [("b", b"y" * 50)], limits)  # fine
    with pytest.raises(UnsafeInput, match="'big.png' is .* the limit per image"):
        own.check_additions([], [("ok.png", b"1"), ("big.png", b"x" * 101)], limits)
    with pytest.raises(UnsafeInput, match="would make 6 images; the limit is 5"):
        own.check_additions([[("a", b"1")] * 3], [("b", b"1")] * 3, limits)
    with pytest.raises(UnsafeInput, match="Nothing was added"):
        own.check_additions([[("a", b"x" * 100)] * 2], [("b", b"x" * 51)], limits)


def test_sizes_and_default_strategies_per_architecture() -> None:
    assert planform.image_size_for("shapesnet") == 32
    assert planform.image_size_for("resnet18") == 224 and planform.image_size_for("inception_v3") == 299
    assert planform.default_strategy("resnet18", on_cpu=True) == "feature_extract"
    assert planform.default_strategy("resnet18", on_cpu=False) == "finetune_top"
    assert planform.default_strategy("shapesnet", on_cpu=True) == "finetune_top"


def test_only_uncached_imagenet_plans_on_the_cpu_need_an_estimate() -> None:
    fe = planform.own_plan("resnet18", "feature_extract", 40, 3)
    ft = planform.own_plan("resnet18", "finetune_all", 40, 3)
    aug = planform.own_plan("resnet18", "feature_extract", 40, 3, augment=True)
    small = planform.own_plan("shapesnet", "finetune_all", 40, 3)
    assert planform.is_cached(fe) and not planform.needs_estimate(fe, on_cpu=True)
    assert planform.needs_estimate(ft, on_cpu=True) and not planform.needs_estimate(ft, on_cpu=False)
    assert planform.needs_estimate(aug, on_cpu=True)  # augmentation turns the cache off
    assert not planform.needs_estimate(small, on_cpu=True)


def test_own_plan_fits_the_batch_and_refuses_what_cannot_run() -> None:
    plan = planform.own_plan("shapesnet", "finetune_top", 18, 3, epochs=3, lr=0.01, seed=4)
    assert plan.batch_size == 18 and plan.epochs == 3 and plan.lr == 0.01 and plan.seed == 4
    assert plan.frozen == ("block1", "block2", "block3")
    with pytest.raises(ValueError, match="at least two classes"):
        planform.own_plan("shapesnet", "finetune_top", 18, 1)


def test_own_plan_trains_the_epochs_asked_for_unless_a_minimum_of_steps_is_set() -> None:
    plan = planform.own_plan("shapesnet", "finetune_top", 18, 3, epochs=10)
    assert plan.min_steps == 0  # no hidden floor: 10 epochs are 10 epochs
    assert planform.schedule_note(plan, 18) == "10 epochs of 1 step each: 10 optimiser steps."
    raised = planform.own_plan("shapesnet", "finetune_top", 18, 3, epochs=10, min_steps=100)
    assert raised.min_steps == 100
    assert planform.schedule_note(raised, 18) == (
        "10 epochs of 1 step would be only 10 optimiser steps, so the run repeats to 100 epochs (100 steps) to "
        "reach the minimum of 100 steps.")
    big = planform.own_plan("shapesnet", "finetune_top", 200, 3, epochs=4, batch_size=32, min_steps=20)
    assert planform.schedule_note(big, 200) == "4 epochs of 7 steps each: 28 optimiser steps."


def test_counts_chart_takeaways_follow_the_counts() -> None:
    ds = load_class_uploads(uploads(4), size=32)
    c = own_data.counts_chart(ds.report)
    assert c.fig.layout.title.text == "Usable images per class" and list(c.fig.data[0].y) == [4, 4, 4]
    assert c.takeaway == "Balanced: every class has 4 images."
    up = uploads(4)
    up["red"] = up["red"] * 3  # 12 red, 4 green, 4 blue
    up["blue"] = up["blue"][:1]  # 1 blue: blocking
    rep = load_class_uploads(up, size=32).report
    assert "blue has fewer than 2 images" in own_data.counts_chart(rep).takeaway
    up["blue"] = uploads(4)["blue"]
    assert "red has the most images (12), green the fewest (4): 3.0x apart" in \
        own_data.counts_chart(load_class_uploads(up, size=32).report).takeaway


def test_previews_show_the_decoded_images() -> None:
    ds = load_class_uploads(uploads(8), size=32)
    tiles = own.previews(ds, per_class=3, side=64)
    assert list(tiles) == ["red", "green", "blue"]
    assert all(len(v) == 3 and v[0].shape == (64, 64, 3) and v[0].dtype == np.uint8 for v in tiles.values())
    centre = tiles["red"][0][32, 32]
    assert centre[0] > 150 and centre[1] < 100  # the red disc


def test_own_train_job_trains_above_chance_through_the_job_manager() -> None:
    ds = load_class_uploads(uploads(8), size=32)
    plan = planform.own_plan("shapesnet", "finetune_top", 18, 3, epochs=5, min_steps=100)
    mgr = JobManager(limit=1)
    mgr.cores = 1  # one torch thread: on a shared, busy machine two spinning threads run many times slower
    job = mgr.submit(work.OwnTrainJob(plan, ds, 0.25), owner="test", label="own")
    assert job.wait(300) and job.state == "done", job.error
    out = job.result
    assert (out.n_train, out.n_val) == (18, 6) and out.val_images.shape == (6, 3, 32, 32)
    assert out.classes == ("red", "green", "blue") and out.result.status == "finished"
    assert out.result.final_val_acc > 1 / 3
    ran = what_ran(out.result)  # what the summary says: the epochs really run, and why not the plan's 5
    assert ran.startswith("Ran 100 epochs (100 optimiser steps).") and "instead of 5" in ran
    assert len(job.buffer) > 0  # records streamed while it ran
    with pytest.raises(ValueError, match="cannot be trained on yet"):
        own.split_tensors(load_class_uploads({"only": uploads(3)["red"]}, size=32))
