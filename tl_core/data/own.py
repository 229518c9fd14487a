"""A learner's own dataset: load a zip of class folders or per-class uploads, validate it and report what happened.

Two ways in: a zip in ImageFolder layout (`<class>/<image>`, optionally inside one wrapper folder such as
`data/<class>/<image>`), or Teachable-Machine-style uploads (`{class name: [(file name, bytes), ...]}`). Both
produce an `OwnDataset` whose `ValidationReport` lists every skipped file, every colour conversion and every
blocking problem before any training starts; identical images (by a hash of their decoded pixels) are reported
too, both across classes (label conflicts) and across the training/validation split (leakage). The page's
class-by-class editor (`ClassEditor`) keeps the classes and their files and checks every addition before it is
kept, and the dataset is split class by class for training. Torch-free: numpy and PIL only.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tl_core.data.safe_io import Limits, UnsafeInput, decode_image, safe_extract_zip, session_dir

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from tl_core.data.datasets import TensorData

MIN_CLASSES = 2  # training needs at least this many classes
MIN_PER_CLASS = 2  # and at least this many images in each class
MIN_SIZE, MAX_SIZE = 8, 512  # allowed side of the square images the dataset is resized to
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"}
_JUNK_DIRS = {"__macosx", ".git", ".svn", ".ipynb_checkpoints", "$recycle.bin", ".trashes", ".spotlight-v100",
              ".fseventsd"}
HIDDEN = "hidden/system file"
EMPTY = "empty folder"
OUTSIDE = "not in a class folder"
LIST_HEAD = 5  # a long list of names is shown as its first LIST_HEAD items and "and N more"


def summarise(items: Sequence[str], head: int = LIST_HEAD, quote: bool = True) -> str:
    """A list of names for a sentence, cut short when it is long: "'a', 'b' and 'c'", or
    "'a', 'b', 'c', 'd', 'e' and 995 more".

    Args:
        items: The names, in the order to show them.
        head: How many to name when there are more than head + 1 (naming all but one would save nothing).
        quote: Quote each name with repr (names from learners may contain spaces or punctuation).

    Returns:
        The phrase; "" for no items.
    """
    shown = [repr(str(i)) if quote else str(i) for i in items]
    if len(shown) > head + 1:
        shown = shown[:head] + [f"{len(items) - head} more"]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


@dataclass
class Skipped:
    """A file or folder that was left out, and why."""

    path: str  # as in the upload, for example "cats/notes.txt" or "__MACOSX/"
    reason: str  # "corrupt image", "not an image", "hidden/system file", "empty folder", "too large", ...


@dataclass
class Converted:
    """An image whose colour mode was converted to RGB."""

    path: str  # as in the upload
    from_mode: str  # PIL mode of the file: "CMYK", "I;16" (16-bit), "P" (palette), "RGBA", "LA", "L", ...


@dataclass
class Duplicate:
    """One picture that occurs more than once in an upload (identical decoded pixels)."""

    digest: str  # the hash of its decoded pixels
    paths: list[str]  # every file that holds it, as in the upload, in load order
    classes: list[str]  # the class of each of those files (same order)

    @property
    def conflict(self) -> bool:
        """True when the copies sit in different classes: the same picture carries two labels."""
        return len(set(self.classes)) > 1

    def describe(self) -> str:
        """One plain sentence (no Markdown): the files, and their classes when they differ."""
        where = summarise(self.paths)
        if self.conflict:
            return f"{where} are the same picture, labelled {summarise(sorted(set(self.classes)))}."
        return f"{where} are the same picture (class {self.classes[0]!r})."


@dataclass
class ValidationReport:
    """What was found in an upload, before any training."""

    classes: list[str]  # class names, in label order
    counts: dict[str, int]  # usable images per class
    skipped: list[Skipped] = field(default_factory=list)  # files and folders left out
    converted: list[Converted] = field(default_factory=list)  # images converted to RGB
    problems: list[str] = field(default_factory=list)  # blocking: training must not start while any remain
    duplicates: list[Duplicate] = field(default_factory=list)  # pictures found more than once (not blocking)

    @property
    def ok(self) -> bool:
        """True when nothing blocks training."""
        return not self.problems

    @property
    def n_images(self) -> int:
        """Usable images over all classes."""
        return sum(self.counts.values())

    @property
    def conflicts(self) -> list[Duplicate]:
        """Duplicates whose copies carry different labels."""
        return [d for d in self.duplicates if d.conflict]


@dataclass
class OwnDataset:
    """A learner's images, decoded and resized, with the report about them."""

    report: ValidationReport  # check report.ok before training
    images: np.ndarray  # (N, 3, S, S) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64, indices into classes
    classes: tuple[str, ...]  # class names; equals report.classes
    paths: tuple[str, ...] = ()  # (N,) each image's file, as in the upload
    digests: tuple[str, ...] = ()  # (N,) a hash of each image's decoded pixels (identical pictures share it)

    @property
    def size(self) -> int:
        """The side S of the square images."""
        return int(self.images.shape[-1])

    def leaks(self, train_idx: np.ndarray, val_idx: np.ndarray) -> list[Duplicate]:
        """Pictures that sit on both sides of a split: the model is then scored on images it trained on.

        Args:
            train_idx: Indices of the training images (e.g. from stratified_split).
            val_idx: Indices of the validation images.

        Returns:
            One Duplicate per leaked picture (all its copies, training and validation), in load order.
        """
        train_digests = {self.digests[i] for i in np.asarray(train_idx).tolist()}
        leaked = {self.digests[i] for i in np.asarray(val_idx).tolist()} & train_digests
        return [d for d in _group_duplicates(self) if d.digest in leaked]


# ---- helpers ---------------------------------------------------------------------------------------------


def _is_junk_name(name: str) -> bool:
    low = name.lower()
    return low in _JUNK_NAMES or name.startswith(".") or name.startswith("~$")


def _is_junk_dir(name: str) -> bool:
    return name.lower() in _JUNK_DIRS or name.startswith(".")


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"Image size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}; got {size!r}.")


def _check_memory(n: int, size: int, limits: Limits) -> None:
    need = n * 3 * size * size * 4
    if need > limits.max_array_bytes:
        raise UnsafeInput(f"{n} images at {size}x{size} pixels need {need / 2**20:.0f} MB of memory; the limit is "
                          f"{limits.max_array_bytes / 2**20:.0f} MB. Use a smaller image size or fewer images.",
                          "too large")


def _to_array(rgb: PILImage.Image, size: int) -> np.ndarray:
    """Resize the shorter side to `size`, crop the centre square, return (3, S, S) float32 in [0, 1]."""
    from PIL import Image, ImageOps

    square = ImageOps.fit(rgb, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
    return np.asarray(square, dtype=np.float32).transpose(2, 0, 1) / 255.0  # (H, W, 3) -> (3, S, S)


def _class_problems(classes: list[str], counts: dict[str, int], hint: str) -> list[str]:
    problems: list[str] = []
    if len(classes) < MIN_CLASSES:
        if classes:
            found = f"Found 1 class ({classes[0]!r})"
        else:
            found = "Found no class with images"
        problems.append(f"{found}; training needs at least {MIN_CLASSES}. {hint}")
    small = [c for c in classes if counts[c] < MIN_PER_CLASS]
    if len(small) > LIST_HEAD:  # a zip of a thousand one-image classes gets one line, not a thousand
        problems.append(f"{len(small)} classes have fewer than {MIN_PER_CLASS} images: {summarise(small)}. "
                        f"Each class needs at least {MIN_PER_CLASS}; add more images to them (or remove them).")
        return problems
    for c in small:
        n = counts[c]
        what = "image" if n == 1 else "images"
        problems.append(f"Class {c!r} has {n} {what}; each class needs at least {MIN_PER_CLASS}. "
                        f"Add more to {c!r}.")
    return problems


def _group_duplicates(ds: OwnDataset) -> list[Duplicate]:
    """Every picture that occurs more than once in the dataset (same digest), in load order."""
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(ds.digests):
        groups.setdefault(digest, []).append(i)
    return [Duplicate(digest, [ds.paths[i] for i in idx], [ds.classes[int(ds.labels[i])] for i in idx])
            for digest, idx in groups.items() if len(idx) > 1]


def _digest(rgb: PILImage.Image) -> str:
    """A hash of an image's decoded RGB pixels and size: identical pictures match, whatever their file format."""
    h = hashlib.blake2b(f"{rgb.width}x{rgb.height}".encode(), digest_size=16)
    h.update(rgb.tobytes())
    return h.hexdigest()


def _build(items: Iterable[tuple[str, int, str, bytes]], n_max: int, classes: list[str], size: int,
           limits: Limits, skipped: list[Skipped], problems_hint: str) -> OwnDataset:
    """Decode (path, label, class, bytes) items into arrays and a report."""
    _check_memory(n_max, size, limits)
    images = np.empty((n_max, 3, size, size), dtype=np.float32)  # (N_max, 3, S, S), trimmed below
    labels = np.empty(n_max, dtype=np.int64)
    counts = {c: 0 for c in classes}
    converted: list[Converted] = []
    paths: list[str] = []
    digests: list[str] = []
    n = 0
    for path, label, cls, data in items:
        try:
            rgb, mode = decode_image(data, limits, min_side=size)
        except UnsafeInput as exc:
            skipped.append(Skipped(path, exc.reason))
            continue
        if mode != "RGB":
            converted.append(Converted(path, mode))
        images[n] = _to_array(rgb, size)
        labels[n] = label
        paths.append(path)
        digests.append(_digest(rgb))
        counts[cls] += 1
        n += 1
    report = ValidationReport(classes=list(classes), counts=counts, skipped=skipped, converted=converted,
                              problems=_class_problems(classes, counts, problems_hint))
    if n < n_max:  # some files were skipped
        images, labels = images[:n].copy(), labels[:n].copy()
    ds = OwnDataset(report=report, images=images, labels=labels, classes=tuple(classes), paths=tuple(paths),
                    digests=tuple(digests))
    report.duplicates = _group_duplicates(ds)
    return ds


# ---- zip of class folders --------------------------------------------------------------------------------


def _visible(folder: Path, root: Path, skipped: list[Skipped]) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of `folder`, sorted, with junk recorded in `skipped` and left out."""
    dirs: list[Path] = []
    files: list[Path] = []
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            skipped.append(Skipped(rel, "link"))
        elif p.is_dir():
            if _is_junk_dir(p.name):
                skipped.append(Skipped(rel + "/", HIDDEN))
            else:
                dirs.append(p)
        elif _is_junk_name(p.name):
            skipped.append(Skipped(rel, HIDDEN))
        else:
            files.append(p)
    return dirs, files


def _walk_files(folder: Path, root: Path, skipped: list[Skipped]) -> list[Path]:
    """All non-junk files under `folder`, recursively, in sorted order; empty sub-folders are reported."""
    dirs, files = _visible(folder, root, skipped)
    out = list(files)
    for d in dirs:
        inner = _walk_files(d, root, skipped)
        if not inner:
            skipped.append(Skipped(d.relative_to(root).as_posix() + "/", EMPTY))
        out.extend(inner)
    return out


def load_folder(root: Path, size: int = 64, limits: Limits = Limits()) -> OwnDataset:
    """Load an ImageFolder-style folder (`<class>/<image>`, or one wrapper folder around that).

    Class names are the folder names, sorted. Images in sub-folders of a class folder belong to that class.

    Args:
        root: The folder, already on disk and trusted to stay inside itself (for example from safe_extract_zip).
        size: Side S of the square images to produce.
        limits: Per-image and memory limits.

    Returns:
        The dataset and its report; check `report.ok` before training.

    Raises:
        ValueError: If `size` is out of range.
        UnsafeInput: If the decoded images would need more memory than `limits.max_array_bytes`.
    """
    _check_size(size)
    root = Path(root)
    skipped: list[Skipped] = []
    base = root
    dirs, files = _visible(base, root, skipped)
    # Unwrap single wrapper folders: data/<class>/<image> -> <class>/<image>.
    for _ in range(8):
        if len(dirs) != 1 or files:
            break
        inner_dirs, inner_files = _visible(dirs[0], root, [])
        if not inner_dirs or inner_files:
            break
        base = dirs[0]
        dirs, files = _visible(base, root, skipped)
    for f in files:
        skipped.append(Skipped(f.relative_to(root).as_posix(), OUTSIDE))
    classes: list[str] = []
    per_class: list[list[Path]] = []
    for d in dirs:
        found = _walk_files(d, root, skipped)
        if not found:
            skipped.append(Skipped(d.relative_to(root).as_posix() + "/", EMPTY))
            continue
        classes.append(d.name)
        per_class.append(found)
    n_max = sum(len(f) for f in per_class)

    def items() -> Iterable[tuple[str, int, str, bytes]]:
        for label, (cls, paths) in enumerate(zip(classes, per_class)):
            for p in paths:
                rel = p.relative_to(root).as_posix()
                if p.stat().st_size > limits.max_file_bytes:
                    skipped.append(Skipped(rel, "too large"))
                    continue
                yield rel, label, cls, p.read_bytes()

    hint = ("Add a folder of images for another class." if classes else
            "Put each class's images in its own folder (for example cats/ and dogs/), zip those folders and "
            "upload the zip.")
    return _build(items(), n_max, classes, size, limits, skipped, hint)


def load_zip(data: bytes, session_id: str, size: int = 64, limits: Limits = Limits()) -> OwnDataset:
    """Load a zip of class folders uploaded by a learner.

    The zip is unpacked (safely) into a fresh folder under `session_dir(session_id)` and nowhere else; the
    unpacked files are deleted again once the images are in memory.

    Args:
        data: The zip's bytes.
        session_id: The app session's id (see safe_io.session_dir).
        size: Side S of the square images to produce.
        limits: The caps to enforce.

    Returns:
        The dataset and its report; check `report.ok` before training.

    Raises:
        UnsafeInput: If the zip itself is refused (see safe_io.safe_extract_zip), with what to do.
        ValueError: If `size` is out of range.
    """
    _check_size(size)
    work = Path(tempfile.mkdtemp(prefix="zip-", dir=session_dir(session_id)))
    try:
        safe_extract_zip(data, work, limits)
        return load_folder(work, size, limits)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- per-class uploads (Teachable Machine style) ---------------------------------------------------------


def load_class_uploads(uploads: dict[str, list[tuple[str, bytes]]], size: int = 64,
                       limits: Limits = Limits()) -> OwnDataset:
    """Load images uploaded (or snapped with the camera) class by class.

    Classes keep the order of the dict. A class with fewer than two usable images is a blocking problem.

    Args:
        uploads: {class name: [(file name, file bytes), ...]}.
        size: Side S of the square images to produce.
        limits: `max_files`, `max_file_bytes`, `max_total_bytes`, `max_image_pixels`, `max_array_bytes`.

    Returns:
        The dataset and its report; check `report.ok` before training.

    Raises:
        UnsafeInput: If there are more files or bytes than the limits allow.
        ValueError: If `size` is out of range.
    """
    _check_size(size)
    n_files = sum(len(v) for v in uploads.values())
    if n_files > limits.max_files:
        raise UnsafeInput(f"There are {n_files} images; the limit is {limits.max_files}. Remove some.",
                          "too many files")
    total = sum(len(b) for v in uploads.values() for _, b in v)
    if total > limits.max_total_bytes:
        raise UnsafeInput(f"The images add up to {total / 2**20:.1f} MB; the limit is "
                          f"{limits.max_total_bytes / 2**20:.1f} MB. Remove some or use smaller images.", "too large")
    skipped: list[Skipped] = []
    classes: list[str] = []
    name_problems: list[str] = []
    for raw in uploads:
        name = str(raw).strip()
        if not name:
            name_problems.append("A class has no name. Give every class a name.")
        elif name in classes:
            name_problems.append(f"Two classes are called {name!r}. Give every class a different name.")
        classes.append(name)

    def items() -> Iterable[tuple[str, int, str, bytes]]:
        for label, (cls, files) in enumerate(zip(classes, uploads.values())):
            for fname, data in files:
                path = f"{cls}/{fname}"
                if _is_junk_name(Path(fname).name):
                    skipped.append(Skipped(path, HIDDEN))
                    continue
                yield path, label, cls, data

    ds = _build(items(), n_files, classes, size, limits, skipped, "Add images for another class.")
    ds.report.problems[:0] = name_problems
    return ds


# ---- splitting -------------------------------------------------------------------------------------------


def stratified_split(labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into training and validation sets, class by class.

    Every class with at least two images gets at least one image on each side; a class with one image goes
    to training.

    Args:
        labels: (N,) integer labels.
        val_fraction: Share of each class for validation, in (0, 1).
        seed: Seeds the shuffle.

    Returns:
        (train indices, validation indices), each sorted, int64, disjoint, together covering 0..N-1.

    Raises:
        ValueError: If val_fraction is not in (0, 1) or labels is not one-dimensional.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional (N,); got shape {labels.shape}.")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"The validation share must be between 0 and 1 (for example 0.2); got {val_fraction!r}.")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < 2:
            train.append(idx)
            continue
        k = min(max(int(round(len(idx) * val_fraction)), 1), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return _sorted_cat(train), _sorted_cat(val)


def _sorted_cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


# ---- class by class: what the page checks before it keeps an addition ------------------------------------------
MAX_CLASSES = 20  # classes a learner can add one by one
MAX_NAME = 40  # characters in a class name
DEFAULT_VAL_FRACTION = 0.2  # share of each class held out for validation

Files = list[tuple[str, bytes]]  # [(file name, file bytes), ...] of one class


def check_class_name(name: str, existing: list[str]) -> str:
    """A new class name, stripped, or ValueError saying what to change.

    Args:
        name: What the learner typed.
        existing: The names already in use.

    Raises:
        ValueError: If the name is empty, too long, contains a slash or a control character, is already used
            (ignoring case) or there are already MAX_CLASSES classes.
    """
    clean = str(name).strip()
    if not clean:
        raise ValueError("Type a name for the class first, for example 'cats'.")
    if len(clean) > MAX_NAME:
        raise ValueError(f"Class names can have at most {MAX_NAME} characters; this one has {len(clean)}.")
    if any(ch in clean for ch in "/\\") or any(ord(ch) < 32 for ch in clean):
        raise ValueError("Class names cannot contain slashes or control characters; use letters, digits and spaces.")
    if clean.casefold() in {e.casefold() for e in existing}:
        raise ValueError(f"There is already a class called {clean!r}; give every class a different name.")
    if len(existing) >= MAX_CLASSES:
        raise ValueError(f"There are already {MAX_CLASSES} classes, the most this page takes. Remove one first.")
    return clean


def check_additions(current: list[Files], new: Files, limits: Limits = Limits()) -> None:
    """Refuse a batch of files for one class before it is kept, if it would break a limit.

    The whole batch is refused or kept, so what the learner added before is never lost. Files that are not
    images are kept here and reported (skipped, with the reason) by the validation report.

    Args:
        current: The files of every class so far.
        new: The batch to add.
        limits: max_file_bytes (per file), max_files and max_total_bytes (all classes together).

    Raises:
        UnsafeInput: Naming the file or the total that is too large, with what to do.
    """
    for fname, data in new:
        if len(data) > limits.max_file_bytes:
            raise UnsafeInput(f"{fname!r} is {len(data) / 2**20:.1f} MB; the limit per image is "
                              f"{limits.max_file_bytes / 2**20:.0f} MB. Use a smaller image. Nothing was added.",
                              "too large")
    n = sum(len(f) for f in current) + len(new)
    if n > limits.max_files:
        raise UnsafeInput(f"That would make {n} images; the limit is {limits.max_files}. Add fewer images. "
                          f"Nothing was added.", "too many files")
    total = sum(len(b) for f in current for _, b in f) + sum(len(b) for _, b in new)
    if total > limits.max_total_bytes:
        raise UnsafeInput(f"That would make {total / 2**20:.1f} MB of images; the limit is "
                          f"{limits.max_total_bytes / 2**20:.0f} MB. Add fewer or smaller images. Nothing was added.",
                          "too large")


@dataclass
class OwnClass:
    """One class of the class-by-class editor."""

    id: int  # stable for the class's life (names can change), unique within its editor
    name: str  # checked by check_class_name
    files: list[tuple[str, bytes]] = field(default_factory=list)  # [(file name, file bytes), ...], unique names


@dataclass
class ClassEditor:
    """The classes a learner builds one by one (upload or camera snapshot), every change checked before it is kept.

    Each method either applies its whole change or raises (ValueError, or UnsafeInput for a limit) and changes
    nothing, so a refused addition never loses what was there. `version` grows with every change: the page keys
    its decoded dataset and its fresh upload widgets on it. `uploads()` is what `load_class_uploads` takes.
    """

    classes: list[OwnClass] = field(default_factory=list)  # in the order they were added (= label order)
    next_id: int = 0  # the id the next class gets
    version: int = 0  # bumped by every change
    limits: Limits = field(default_factory=Limits)  # caps on files and bytes, all classes together

    @property
    def names(self) -> list[str]:
        """The class names, in label order."""
        return [c.name for c in self.classes]

    @property
    def n_files(self) -> int:
        """Files over all classes."""
        return sum(len(c.files) for c in self.classes)

    def get(self, cid: int) -> OwnClass:
        """The class with this id.

        Raises:
            ValueError: If there is none (it was removed).
        """
        for c in self.classes:
            if c.id == cid:
                return c
        raise ValueError(f"There is no class with id {cid!r} (it may have been removed); pick another class.")

    def add_class(self, name: str) -> OwnClass:
        """Add an empty class.

        Raises:
            ValueError: As check_class_name (empty, too long, slashes, a name in use, too many classes).
        """
        new = OwnClass(self.next_id, check_class_name(name, self.names))
        self.classes.append(new)
        self.next_id += 1
        self.version += 1
        return new

    def rename(self, cid: int, name: str) -> OwnClass:
        """Give a class a new name (its files stay).

        Raises:
            ValueError: If there is no such class, or as check_class_name against the other classes' names.
        """
        target = self.get(cid)
        target.name = check_class_name(name, [c.name for c in self.classes if c.id != cid])
        self.version += 1
        return target

    def remove(self, cid: int) -> None:
        """Remove a class and its files.

        Raises:
            ValueError: If there is no such class.
        """
        self.get(cid)
        self.classes = [c for c in self.classes if c.id != cid]
        self.version += 1

    def clear(self, cid: int) -> None:
        """Remove a class's files, keeping the class.

        Raises:
            ValueError: If there is no such class.
        """
        self.get(cid).files = []
        self.version += 1

    def add_files(self, cid: int, files: Files) -> list[str]:
        """Add a batch of files to one class, all or nothing. A name already in the class gets a number in front
        ("2-photo.jpg"), so two camera shots or the same file added twice are both kept.

        Args:
            cid: The class's id.
            files: [(file name, file bytes), ...]; an empty batch changes nothing.

        Returns:
            The names the files were kept under, in order.

        Raises:
            ValueError: If there is no such class.
            UnsafeInput: If the batch would break a limit (see check_additions); nothing is added then.
        """
        target = self.get(cid)
        if not files:
            return []
        check_additions([c.files for c in self.classes], files, self.limits)
        taken = {f for f, _ in target.files}
        kept: list[str] = []
        for fname, data in files:
            base, n, name = fname, 1, fname
            while name in taken:
                n += 1
                name = f"{n}-{base}"
            taken.add(name)
            kept.append(name)
        target.files.extend(zip(kept, (data for _, data in files)))
        self.version += 1
        return kept

    def uploads(self) -> dict[str, list[tuple[str, bytes]]]:
        """{class name: [(file name, bytes), ...]} in label order, for load_class_uploads (copies of the lists)."""
        return {c.name: list(c.files) for c in self.classes}


def previews(ds: OwnDataset, per_class: int = 6, side: int = 64) -> dict[str, list[np.ndarray]]:
    """A few decoded images of every class, as the model will get them, sized for display.

    Args:
        ds: The decoded dataset.
        per_class: Images per class at most.
        side: Display side in pixels (nearest-neighbour up, or area-averaged down).

    Returns:
        {class: [uint8 (side, side, 3), ...]}.
    """
    from PIL import Image

    out: dict[str, list[np.ndarray]] = {}
    for i, c in enumerate(ds.classes):
        tiles = []
        for idx in np.flatnonzero(ds.labels == i)[:per_class]:
            px = np.round(np.clip(ds.images[idx], 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)  # (S, S, 3)
            im = Image.fromarray(px, "RGB")
            method = Image.Resampling.NEAREST if im.width <= side else Image.Resampling.BOX
            tiles.append(np.asarray(im.resize((side, side), method)))
        out[c] = tiles
    return out


# ---- the split --------------------------------------------------------------------------------------------------
def split_sizes(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[int, int]:
    """(training images, validation images) the stratified split will produce."""
    tr, va = stratified_split(labels, val_fraction, seed)
    return len(tr), len(va)


def split_leaks(ds: OwnDataset, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0) -> list[Duplicate]:
    """Pictures that the training split (split_tensors with the same arguments) puts on both sides.

    Returns:
        One Duplicate per leaked picture; empty when training and validation share no picture.
    """
    return ds.leaks(*stratified_split(ds.labels, val_fraction, seed))


def split_tensors(ds: OwnDataset, val_fraction: float = DEFAULT_VAL_FRACTION,
                  seed: int = 0) -> tuple[TensorData, TensorData]:
    """The dataset split class by class into (train, val) tensors.

    Raises:
        ValueError: If the report has blocking problems or the split leaves no validation image.
    """
    if not ds.report.ok:
        raise ValueError(f"The data cannot be trained on yet: {ds.report.problems[0]}")
    tr, va = stratified_split(ds.labels, val_fraction, seed)
    if len(va) == 0:
        raise ValueError("The split left no validation image; add at least two images per class.")
    from tl_core.data.datasets import TensorData  # torch, only when a run is about to train

    return (TensorData.from_numpy(ds.images[tr], ds.labels[tr], ds.classes),
            TensorData.from_numpy(ds.images[va], ds.labels[va], ds.classes))
