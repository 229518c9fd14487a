"""Tests for tl_core.data.own: loading a learner's zip or class uploads, the validation report, and the split."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_core.data.own import (ClassEditor, Converted, Skipped, load_class_uploads, load_zip, split_leaks,
                              stratified_split, summarise)
from tl_core.data.safe_io import Limits, UnsafeInput

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def img_bytes(mode: str = "RGB", color: object = RED, size: tuple[int, int] = (12, 10), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt)
    return buf.getvalue()


def noisy_png(size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the temp folder (and so session_dir) at this test's own folder."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def three_classes(prefix: str = "") -> dict[str, bytes]:
    members = {f"{prefix}cats/c{i}.png": img_bytes(color=RED) for i in range(3)}
    members |= {f"{prefix}dogs/d{i}.png": img_bytes(color=GREEN) for i in range(2)}
    members |= {f"{prefix}birds/b{i}.jpg": img_bytes(color=BLUE, fmt="JPEG") for i in range(4)}
    return members


# ---- zip of class folders --------------------------------------------------------------------------------


def test_good_three_class_zip_loads_with_correct_counts() -> None:
    ds = load_zip(make_zip(three_classes()), "s1", size=16)
    r = ds.report
    assert r.ok and r.problems == []
    assert r.classes == ["birds", "cats", "dogs"] and ds.classes == ("birds", "cats", "dogs")
    assert r.counts == {"birds": 4, "cats": 3, "dogs": 2}
    assert ds.images.shape == (9, 3, 16, 16) and ds.images.dtype == np.float32
    assert ds.labels.dtype == np.int64 and np.bincount(ds.labels).tolist() == [4, 3, 2]
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    # Each label's images have its class's colour: birds blue, cats red, dogs green.
    means = [ds.images[ds.labels == k].mean(axis=(0, 2, 3)) for k in range(3)]
    assert [int(np.argmax(m)) for m in means] == [2, 0, 1]
    assert r.skipped == [] and r.converted == []


def test_single_wrapper_folder_is_unwrapped() -> None:
    ds = load_zip(make_zip(three_classes("data/")), "s1", size=8)
    assert ds.classes == ("birds", "cats", "dogs") and ds.report.counts["birds"] == 4


def test_images_in_subfolders_belong_to_their_class_folder() -> None:
    members = {"cats/indoor/a.png": img_bytes(), "cats/outdoor/b.png": img_bytes(), "dogs/a.png": img_bytes(),
               "dogs/b.png": img_bytes()}
    ds = load_zip(make_zip(members), "s1", size=8)
    assert ds.report.counts == {"cats": 2, "dogs": 2}


def test_resize_is_shorter_side_then_centre_crop() -> None:
    im = Image.new("RGB", (30, 10), RED)
    im.paste(BLUE, (0, 0, 10, 10))  # left third blue: cropped away by a centre square crop
    buf = io.BytesIO()
    im.save(buf, "PNG")
    ds = load_class_uploads({"a": [("x.png", buf.getvalue())] * 2, "b": [("y.png", img_bytes())] * 2}, size=10)
    assert ds.images.shape == (4, 3, 10, 10)
    assert np.allclose(ds.images[0, 0], 1.0) and np.allclose(ds.images[0, 2], 0.0)  # all red, no blue


def test_macos_and_windows_junk_is_skipped_not_loaded() -> None:
    members = three_classes() | {
        "__MACOSX/cats/._c0.png": b"\x00\x05\x16\x07junk",
        "cats/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "cats/._c1.png": b"\x00\x05\x16\x07junk",
        "dogs/Thumbs.db": b"\xd0\xcf\x11\xe0",
    }
    r = load_zip(make_zip(members), "s1", size=8).report
    assert r.ok and r.counts == {"birds": 4, "cats": 3, "dogs": 2}
    assert sorted(r.skipped, key=lambda s: s.path) == [
        Skipped("__MACOSX/", "hidden/system file"),
        Skipped("cats/.DS_Store", "hidden/system file"),
        Skipped("cats/._c1.png", "hidden/system file"),
        Skipped("dogs/Thumbs.db", "hidden/system file"),
    ]


def test_empty_folder_is_reported_and_not_a_class() -> None:
    members = three_classes() | {"fish/": b""}
    r = load_zip(make_zip(members), "s1", size=8).report
    assert "fish" not in r.classes and Skipped("fish/", "empty folder") in r.skipped
    assert r.ok


def test_corrupt_and_non_image_files_are_skipped_with_reasons() -> None:
    members = three_classes() | {"cats/broken.png": noisy_png()[:400], "dogs/notes.txt": b"remember the milk"}
    r = load_zip(make_zip(members), "s1", size=8).report
    assert Skipped("cats/broken.png", "corrupt image") in r.skipped
    assert Skipped("dogs/notes.txt", "not an image") in r.skipped
    assert r.counts == {"birds": 4, "cats": 3, "dogs": 2}


def test_loose_files_at_the_top_are_reported() -> None:
    r = load_zip(make_zip(three_classes() | {"stray.png": img_bytes()}), "s1", size=8).report
    assert Skipped("stray.png", "not in a class folder") in r.skipped and r.n_images == 9


def test_colour_modes_are_converted_and_reported() -> None:
    i16 = io.BytesIO()
    Image.fromarray(np.full((6, 6), 128 * 257, dtype=np.uint16)).save(i16, "PNG")  # mid-grey in 16 bits
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50])
    pbuf = io.BytesIO()
    pal.save(pbuf, "PNG")
    members = {
        "a/cmyk.jpg": img_bytes("CMYK", (255, 0, 0, 0), fmt="JPEG"),  # pure cyan ink
        "a/grey16.png": i16.getvalue(),
        "a/palette.png": pbuf.getvalue(),
        "b/rgba.png": img_bytes("RGBA", (255, 0, 0, 0)),  # fully transparent red -> white
        "b/la.png": img_bytes("LA", (0, 128)),  # black at half opacity -> mid grey
        "b/grey.png": img_bytes("L", 77),
        "b/rgb.png": img_bytes("RGB", GREEN),
    }
    ds = load_zip(make_zip(members), "s1", size=8)
    assert sorted(ds.report.converted, key=lambda c: c.path) == [
        Converted("a/cmyk.jpg", "CMYK"), Converted("a/grey16.png", "I;16"), Converted("a/palette.png", "P"),
        Converted("b/grey.png", "L"), Converted("b/la.png", "LA"), Converted("b/rgba.png", "RGBA"),
    ]
    px = {name: tuple(np.rint(ds.images[i, :, 4, 4] * 255).astype(int))
          for i, name in enumerate(["cmyk", "grey16", "palette", "grey", "la", "rgb", "rgba"])}
    assert px["cmyk"][0] < 20 and px["cmyk"][1] > 235 and px["cmyk"][2] > 235  # cyan
    assert px["grey16"] == (128, 128, 128)  # scaled to 8 bits, not clipped to 255
    assert px["palette"] == (200, 100, 50)
    assert px["rgba"] == (255, 255, 255)
    assert all(120 <= v <= 135 for v in px["la"])
    assert px["grey"] == (77, 77, 77) and px["rgb"] == (0, 255, 0)


def test_one_class_only_is_a_blocking_problem() -> None:
    r = load_zip(make_zip({"cats/a.png": img_bytes(), "cats/b.png": img_bytes()}), "s1", size=8).report
    assert not r.ok
    assert r.problems == ["Found 1 class ('cats'); training needs at least 2. Add a folder of images for another "
                          "class."]


def test_class_with_one_image_is_a_blocking_problem() -> None:
    members = {"cats/a.png": img_bytes(), "cats/b.png": img_bytes(), "dogs/a.png": img_bytes()}
    r = load_zip(make_zip(members), "s1", size=8).report
    assert r.problems == ["Class 'dogs' has 1 image; each class needs at least 2. Add more to 'dogs'."]
    assert not r.ok


def test_class_whose_images_are_all_unusable_is_a_blocking_problem() -> None:
    members = {"cats/a.png": img_bytes(), "cats/b.png": img_bytes(), "dogs/a.txt": b"x", "dogs/b.txt": b"y"}
    r = load_zip(make_zip(members), "s1", size=8).report
    assert r.counts["dogs"] == 0
    assert r.problems == ["Class 'dogs' has 0 images; each class needs at least 2. Add more to 'dogs'."]


def test_load_zip_writes_only_inside_the_session_folder_and_cleans_up(private_tmp: Path, tmp_path: Path) -> None:
    before = {p for p in tmp_path.rglob("*")}
    load_zip(make_zip(three_classes()), "sess-A", size=8)
    new = {p for p in tmp_path.rglob("*")} - before
    assert new == {private_tmp / "tl-playbook", private_tmp / "tl-playbook" / "sess-A"}  # folders only, empty
    assert not any((private_tmp / "tl-playbook" / "sess-A").iterdir())


def test_load_zip_with_zip_slip_writes_nothing(private_tmp: Path, tmp_path: Path) -> None:
    members = three_classes() | {"../../../escaped.png": img_bytes()}
    with pytest.raises(UnsafeInput, match="points outside the zip"):
        load_zip(make_zip(members), "sess-B", size=8)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_memory_limit_is_checked_before_decoding() -> None:
    with pytest.raises(UnsafeInput, match=r"9 images at 64x64 pixels need .* MB of memory"):
        load_zip(make_zip(three_classes()), "s1", size=64, limits=Limits(max_array_bytes=100_000))


def test_image_size_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="Image size must be a whole number"):
        load_zip(make_zip(three_classes()), "s1", size=2)


# ---- per-class uploads -----------------------------------------------------------------------------------


def test_class_uploads_keep_their_order_and_skip_junk() -> None:
    uploads = {
        "thumbs up": [("cam-1.jpg", img_bytes(fmt="JPEG")), ("cam-2.jpg", img_bytes(fmt="JPEG")),
                      (".DS_Store", b"junk")],
        "thumbs down": [("a.png", img_bytes(color=BLUE)), ("b.png", img_bytes(color=BLUE)),
                        ("c.png", noisy_png()[:400])],
    }
    ds = load_class_uploads(uploads, size=8)
    assert ds.classes == ("thumbs up", "thumbs down")  # the order the learner made them in
    assert ds.report.counts == {"thumbs up": 2, "thumbs down": 2} and ds.report.ok
    assert ds.labels.tolist() == [0, 0, 1, 1]
    assert Skipped("thumbs up/.DS_Store", "hidden/system file") in ds.report.skipped
    assert Skipped("thumbs down/c.png", "corrupt image") in ds.report.skipped


def test_class_uploads_problems() -> None:
    r = load_class_uploads({"only": [("a.png", img_bytes()), ("b.png", img_bytes())]}, size=8).report
    assert r.problems == ["Found 1 class ('only'); training needs at least 2. Add images for another class."]
    r = load_class_uploads({"a": [("a.png", img_bytes())] * 2, "b": []}, size=8).report
    assert r.problems == ["Class 'b' has 0 images; each class needs at least 2. Add more to 'b'."]
    r = load_class_uploads({"a": [("a.png", img_bytes())] * 2, " a ": [("a.png", img_bytes())] * 2}, size=8).report
    assert "Two classes are called 'a'. Give every class a different name." in r.problems


def test_class_uploads_limits() -> None:
    uploads = {"a": [("a.png", img_bytes())] * 3, "b": [("b.png", img_bytes())] * 3}
    with pytest.raises(UnsafeInput, match="There are 6 images; the limit is 5"):
        load_class_uploads(uploads, size=8, limits=Limits(max_files=5))
    with pytest.raises(UnsafeInput, match="The images add up to"):
        load_class_uploads(uploads, size=8, limits=Limits(max_total_bytes=100))
    ds = load_class_uploads(uploads, size=8, limits=Limits(max_image_pixels=50))  # 12 x 10 > 50 pixels
    assert ds.report.n_images == 0 and {s.reason for s in ds.report.skipped} == {"too large"}


# ---- split -----------------------------------------------------------------------------------------------


def test_stratified_split_keeps_every_class_on_both_sides() -> None:
    labels = np.array([0] * 2 + [1] * 3 + [2] * 10 + [3] * 1 + [4] * 50)
    train, val = stratified_split(labels, val_fraction=0.2, seed=1)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    for c in (0, 1, 2, 4):
        assert (labels[train] == c).any() and (labels[val] == c).any(), c
    assert (labels[train] == 3).sum() == 1 and not (labels[val] == 3).any()
    assert (labels[val] == 4).sum() == 10 and (labels[val] == 2).sum() == 2
    t2, v2 = stratified_split(labels, val_fraction=0.2, seed=1)
    assert np.array_equal(train, t2) and np.array_equal(val, v2)
    t3, _ = stratified_split(labels, val_fraction=0.2, seed=2)
    assert not np.array_equal(train, t3)


def test_stratified_split_tiny_fraction_still_gives_validation_images() -> None:
    labels = np.repeat(np.arange(3), 5)
    _, val = stratified_split(labels, val_fraction=0.01)
    assert sorted(np.unique(labels[val]).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_stratified_split_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(np.array([0, 0, 1, 1]), val_fraction=fraction)


# ---- long lists, duplicates and leakage ----------------------------------------------------------------------


def test_summarise_names_the_first_few_and_counts_the_rest() -> None:
    assert summarise([]) == "" and summarise(["a"]) == "'a'"
    assert summarise(["a", "b", "c"]) == "'a', 'b' and 'c'"
    assert summarise([f"c{i}" for i in range(6)]) == "'c0', 'c1', 'c2', 'c3', 'c4' and 'c5'"  # 6: naming all
    assert summarise([f"c{i}" for i in range(1000)]) == "'c0', 'c1', 'c2', 'c3', 'c4' and 995 more"
    assert summarise(["x", "y"], quote=False) == "x and y"


def test_a_zip_of_many_one_image_classes_gets_one_summarised_problem() -> None:
    members = {f"class{i:03d}/a.png": img_bytes(color=(i, 0, 0)) for i in range(300)}
    r = load_zip(make_zip(members), "s1", size=8).report
    assert len(r.classes) == 300 and not r.ok
    assert r.problems == ["300 classes have fewer than 2 images: 'class000', 'class001', 'class002', 'class003', "
                          "'class004' and 295 more. Each class needs at least 2; add more images to them (or remove "
                          "them)."]


def test_identical_pictures_are_found_by_their_pixels_across_classes_and_formats() -> None:
    members = {"cats/c0.png": img_bytes(color=RED), "cats/c1.png": img_bytes(color=(200, 0, 0)),
               "cats/c2.bmp": img_bytes(color=RED, fmt="BMP"),  # the same picture as c0.png, another format
               "dogs/d0.png": img_bytes(color=GREEN), "dogs/d1.png": img_bytes(color=BLUE),
               "dogs/copy_of_c1.png": img_bytes(color=(200, 0, 0))}  # a cat picture labelled dog
    ds = load_zip(make_zip(members), "s1", size=8)
    r = ds.report
    assert r.ok  # reported, not blocking
    groups = {tuple(d.paths): d for d in r.duplicates}
    assert set(groups) == {("cats/c0.png", "cats/c2.bmp"), ("cats/c1.png", "dogs/copy_of_c1.png")}
    assert [tuple(d.paths) for d in r.conflicts] == [("cats/c1.png", "dogs/copy_of_c1.png")]
    assert groups[("cats/c1.png", "dogs/copy_of_c1.png")].describe() == (
        "'cats/c1.png' and 'dogs/copy_of_c1.png' are the same picture, labelled 'cats' and 'dogs'.")
    assert groups[("cats/c0.png", "cats/c2.bmp")].describe() == (
        "'cats/c0.png' and 'cats/c2.bmp' are the same picture (class 'cats').")
    assert len(ds.paths) == len(ds.digests) == len(ds.labels) == 6


def test_leakage_is_a_picture_on_both_sides_of_the_split() -> None:
    uploads = {"a": [(f"a{i}.png", img_bytes(color=(10 * i, 0, 0))) for i in range(5)] + [
        ("a0-again.png", img_bytes(color=(0, 0, 0)))],
        "b": [(f"b{i}.png", img_bytes(color=(0, 10 * i + 5, 0))) for i in range(6)]}
    ds = load_class_uploads(uploads, size=8)
    (dup,) = ds.report.duplicates
    assert dup.paths == ["a/a0.png", "a/a0-again.png"] and not dup.conflict
    i, j = ds.paths.index("a/a0.png"), ds.paths.index("a/a0-again.png")
    others = [k for k in range(len(ds.labels)) if k not in (i, j)]
    assert [d.paths for d in ds.leaks(np.array([i] + others[:3]), np.array([j] + others[3:]))] == [dup.paths]
    assert ds.leaks(np.array([i, j] + others[:3]), np.array(others[3:])) == []  # both copies on one side
    seeds = [s for s in range(40) if split_leaks(ds, 0.2, s)]  # the real split, over seeds: sometimes leaks
    assert seeds and len(seeds) < 40
    tr, va = stratified_split(ds.labels, 0.2, seeds[0])
    assert {i, j} & set(tr.tolist()) and {i, j} & set(va.tolist())


# ---- the class-by-class editor -------------------------------------------------------------------------------


def test_class_editor_adds_renames_removes_and_clears_classes() -> None:
    ed = ClassEditor()
    cats, dogs = ed.add_class(" cats "), ed.add_class("dogs")
    assert ed.names == ["cats", "dogs"] and (cats.id, dogs.id) == (0, 1) and ed.version == 2
    with pytest.raises(ValueError, match="already a class called 'Dogs'"):
        ed.add_class("Dogs")
    assert ed.names == ["cats", "dogs"] and ed.version == 2  # refused: nothing changed
    assert ed.rename(cats.id, "Cats").name == "Cats"  # a new case of its own name is fine
    with pytest.raises(ValueError, match="already a class called 'dogs'"):
        ed.rename(cats.id, "dogs")
    with pytest.raises(ValueError, match="slashes"):
        ed.rename(dogs.id, "a/b")
    assert ed.names == ["Cats", "dogs"]
    ed.add_files(dogs.id, [("d.png", img_bytes(color=GREEN))])
    ed.clear(dogs.id)
    assert ed.get(dogs.id).files == [] and ed.names == ["Cats", "dogs"]
    ed.remove(cats.id)
    assert ed.names == ["dogs"] and ed.add_class("birds").id == 2  # ids are never reused
    with pytest.raises(ValueError, match="no class with id 0"):
        ed.remove(cats.id)


def test_class_editor_keeps_files_all_or_nothing_and_feeds_the_loader() -> None:
    ed = ClassEditor(limits=Limits(max_files=4, max_file_bytes=10_000))
    a, b = ed.add_class("a"), ed.add_class("b")
    assert ed.add_files(a.id, [("x.png", img_bytes(color=RED)), ("x.png", img_bytes(color=(9, 0, 0)))]) == [
        "x.png", "2-x.png"]  # two snapshots with one name: both kept
    before = ed.version
    with pytest.raises(UnsafeInput, match="would make 5 images; the limit is 4"):
        ed.add_files(b.id, [(f"{i}.png", img_bytes(color=BLUE)) for i in range(3)])
    assert ed.get(b.id).files == [] and ed.version == before  # nothing half-added
    assert ed.add_files(b.id, []) == [] and ed.version == before
    ed.add_files(b.id, [("1.png", img_bytes(color=BLUE)), ("2.png", img_bytes(color=GREEN))])
    assert ed.n_files == 4
    ds = load_class_uploads(ed.uploads(), size=8)
    assert ds.classes == ("a", "b") and ds.report.counts == {"a": 2, "b": 2} and ds.report.ok
    assert ds.paths == ("a/x.png", "a/2-x.png", "b/1.png", "b/2.png")
