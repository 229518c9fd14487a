"""Tests for tl_core.data.safe_io: every kind of bad upload is refused with its own message, and nothing escapes dest."""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_core.data.safe_io import Limits, UnsafeInput, open_image, remove_session_dir, safe_extract_zip, session_dir


def make_zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def tree(root: Path) -> set[str]:
    """Every path under root, relative, as strings (folders end with '/')."""
    return {p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*")}


def png_bytes(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "out" / "dest"


def assert_refused(data: bytes, dest: Path, match: str, limits: Limits = Limits()) -> UnsafeInput:
    """Extraction is refused with `match` in the message and nothing at all is left in or beside dest."""
    root = dest.parent.parent
    before = tree(root)
    with pytest.raises(UnsafeInput, match=match) as info:
        safe_extract_zip(data, dest, limits)
    after = tree(root) - before
    assert after <= {"out/", "out/dest/"}, f"files were written: {after}"
    assert not any(dest.rglob("*")) if dest.exists() else True
    return info.value


# ---- good input ------------------------------------------------------------------------------------------


def test_good_zip_extracts_nested_files(dest: Path) -> None:
    data = make_zip([("cats/", b""), ("cats/a.png", png_bytes()), ("dogs/deep/b.txt", b"hello"), ("./c.bin", b"x")])
    files = safe_extract_zip(data, dest)
    assert [p.relative_to(dest.resolve()).as_posix() for p in files] == ["cats/a.png", "dogs/deep/b.txt", "c.bin"]
    assert (dest / "dogs/deep/b.txt").read_bytes() == b"hello"
    assert (dest / "cats/a.png").read_bytes() == png_bytes()
    assert stat.S_IMODE(os.stat(dest / "cats/a.png").st_mode) & 0o077 == 0  # private to the server's user


def test_file_object_input_works(dest: Path) -> None:
    files = safe_extract_zip(io.BytesIO(make_zip([("a/b.txt", b"12345")])), dest)
    assert len(files) == 1 and files[0].read_bytes() == b"12345"


def test_backslash_relative_names_become_folders(dest: Path) -> None:
    files = safe_extract_zip(make_zip([("cats\\a.txt", b"meow")]), dest)
    assert files == [dest.resolve() / "cats" / "a.txt"]


# ---- refused input ---------------------------------------------------------------------------------------


def test_zip_slip_dotdot_is_refused(dest: Path) -> None:
    data = make_zip([("cats/ok.txt", b"fine"), ("cats/../../evil.txt", b"pwned")])
    err = assert_refused(data, dest, r"'cats/\.\./\.\./evil\.txt' points outside the zip")
    assert err.reason == "unsafe path"
    assert not (dest.parent / "evil.txt").exists() and not (dest.parent.parent / "evil.txt").exists()


def test_zip_slip_with_backslashes_is_refused(dest: Path) -> None:
    assert_refused(make_zip([("..\\..\\evil.txt", b"pwned")]), dest, "points outside the zip")


@pytest.mark.parametrize("name", ["/tmp/evil.txt", "C:\\Windows\\evil.txt", "c:/evil.txt", "\\\\server\\share\\x"])
def test_absolute_paths_are_refused(dest: Path, name: str) -> None:
    assert_refused(make_zip([("ok.txt", b"x"), (name, b"pwned")]), dest, "has an absolute path")


def test_symlink_member_is_refused(dest: Path) -> None:
    info = zipfile.ZipInfo("cats/link.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip([("cats/a.txt", b"x"), (info, b"/etc/passwd")])
    assert_refused(data, dest, "'cats/link.png' is a symbolic link")


def test_too_many_files_is_refused(dest: Path) -> None:
    data = make_zip([(f"c/{i}.txt", b"x") for i in range(4)])
    err = assert_refused(data, dest, "The zip has 4 entries; the limit is 3", Limits(max_files=3))
    assert err.reason == "too many files"


def test_member_too_big_by_declared_size_is_refused(dest: Path) -> None:
    data = make_zip([("small.bin", b"x" * 10), ("big.bin", os.urandom(2000))])
    err = assert_refused(data, dest, r"'big\.bin' is .* uncompressed; the limit per file", Limits(max_file_bytes=1000))
    assert err.reason == "too large"


def test_total_too_big_is_refused(dest: Path) -> None:
    data = make_zip([(f"{i}.bin", os.urandom(1500)) for i in range(3)])
    assert_refused(data, dest, r"unpacks to more than .* \(reached at '2\.bin'\)",
                   Limits(max_file_bytes=2000, max_total_bytes=4000))


def test_ratio_bomb_is_refused(dest: Path) -> None:
    zeros = bytes(4 * 2**20)  # 4 MiB of zeros deflate about 1000x
    data = make_zip([("bomb.bin", zeros)])
    assert len(data) < 20_000
    err = assert_refused(data, dest, r"'bomb\.bin' expands \d+x .* zip bomb")
    assert err.reason == "zip bomb"


def test_small_compressible_files_pass_the_ratio_check(dest: Path) -> None:
    files = safe_extract_zip(make_zip([("blank.txt", bytes(10_000))]), dest)  # ratio > 100, but only 10 kB
    assert files[0].stat().st_size == 10_000


def _patch_sizes(data: bytes, name: bytes, new_size: int) -> bytes:
    """Make both headers of member `name` claim an uncompressed size of new_size (the CRC stays the real one)."""
    buf = bytearray(data)
    local = buf.index(b"PK\x03\x04")
    assert buf[local + 30: local + 30 + len(name)] == name
    struct.pack_into("<I", buf, local + 22, new_size)
    central = buf.index(b"PK\x01\x02")
    assert buf[central + 46: central + 46 + len(name)] == name
    struct.pack_into("<I", buf, central + 24, new_size)
    return bytes(buf)


def test_header_that_lies_about_size_is_caught_while_streaming(dest: Path) -> None:
    payload = os.urandom(50_000)
    data = _patch_sizes(make_zip([("liar.bin", payload)]), b"liar.bin", 100)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.getinfo("liar.bin").file_size == 100  # the header now passes every declared-size check
    err = assert_refused(data, dest, r"'liar\.bin' is damaged: its contents do not match its header",
                         Limits(max_file_bytes=1000))
    assert err.reason == "corrupt zip"


def test_a_failure_midway_removes_what_was_already_written(dest: Path) -> None:
    good = [(f"ok/{i}.bin", os.urandom(100)) for i in range(3)]
    data = make_zip(good + [("liar.bin", os.urandom(5000))])
    buf = bytearray(data)  # patch the last member's sizes in both headers
    local = [i for i in range(len(buf)) if buf.startswith(b"PK\x03\x04", i)][-1]
    struct.pack_into("<I", buf, local + 22, 50)
    central = [i for i in range(len(buf)) if buf.startswith(b"PK\x01\x02", i)][-1]
    struct.pack_into("<I", buf, central + 24, 50)
    assert_refused(bytes(buf), dest, r"'liar\.bin' is damaged")
    assert not (dest / "ok").exists()


def test_encrypted_member_is_refused(dest: Path) -> None:
    buf = bytearray(make_zip([("secret.txt", b"hidden")], zipfile.ZIP_STORED))
    struct.pack_into("<H", buf, buf.index(b"PK\x03\x04") + 6, 0x1)
    struct.pack_into("<H", buf, buf.index(b"PK\x01\x02") + 8, 0x1)
    assert_refused(bytes(buf), dest, "'secret.txt' is password-protected")


def test_unsupported_compression_is_refused(dest: Path) -> None:
    assert_refused(make_zip([("a.txt", b"x" * 100)], zipfile.ZIP_BZIP2), dest, "unsupported compression method")


def test_duplicate_member_is_refused(dest: Path) -> None:
    with pytest.warns(UserWarning):  # zipfile itself warns about the duplicate name
        data = make_zip([("a.txt", b"1"), ("a.txt", b"2")])
    assert_refused(data, dest, "'a.txt' appears twice")


@pytest.mark.parametrize("data", [b"hello, not a zip", png_bytes(), b""])
def test_not_a_zip_is_refused(dest: Path, data: bytes) -> None:
    err = assert_refused(data, dest, "This file is not a zip archive")
    assert err.reason == "not a zip"


def test_upload_over_the_size_limit_is_refused(dest: Path) -> None:
    data = make_zip([("a.bin", os.urandom(3000))])
    assert_refused(data, dest, r"The upload is .*; the limit is", Limits(max_upload_bytes=1000))


def test_refusal_happens_before_anything_is_written(dest: Path) -> None:
    # The bad member comes last: a checker that wrote as it went would have written the first two.
    data = make_zip([("a/1.txt", b"1"), ("a/2.txt", b"2"), ("../evil.txt", b"x")])
    assert_refused(data, dest, "points outside the zip")
    assert not (dest / "a").exists()


# ---- session folders -------------------------------------------------------------------------------------


@pytest.fixture
def tmpdir_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_session_dir_is_private_and_inside_the_temp_root(tmpdir_root: Path) -> None:
    d = session_dir("abc-123")
    assert d == tmpdir_root / "tl-playbook" / "abc-123" and d.is_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    evil = session_dir("../../etc")
    assert evil.parent == tmpdir_root / "tl-playbook" and ".." not in evil.name
    assert session_dir("a/b") != session_dir("a_b")  # sanitising cannot make two sessions share a folder


def test_remove_session_dir_is_idempotent(tmpdir_root: Path) -> None:
    d = session_dir("s1")
    (d / "f.txt").write_text("x")
    remove_session_dir("s1")
    assert not d.exists()
    remove_session_dir("s1")  # again: no error
    remove_session_dir("never-created")


def test_session_dir_refuses_an_empty_id(tmpdir_root: Path) -> None:
    with pytest.raises(ValueError, match="session id"):
        session_dir("  ")


def test_session_root_that_is_a_symlink_is_refused(tmpdir_root: Path) -> None:
    (tmpdir_root / "elsewhere").mkdir()
    (tmpdir_root / "tl-playbook").symlink_to(tmpdir_root / "elsewhere")
    with pytest.raises(PermissionError, match="real folder"):
        session_dir("s1")
    assert not any((tmpdir_root / "elsewhere").iterdir())


# ---- images ----------------------------------------------------------------------------------------------


def test_open_image_returns_rgb() -> None:
    buf = io.BytesIO()
    Image.new("L", (5, 7), 99).save(buf, "PNG")
    im = open_image(buf.getvalue())
    assert im.mode == "RGB" and im.size == (5, 7) and im.getpixel((0, 0)) == (99, 99, 99)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(UnsafeInput, match=r"image is too large .* This one is 20 x 30") as info:
        open_image(png_bytes((20, 30)), Limits(max_image_pixels=500))
    assert info.value.reason == "too large"
    assert open_image(png_bytes((20, 25)), Limits(max_image_pixels=500)).size == (20, 25)  # at the limit: fine


def test_pil_own_bomb_error_becomes_unsafe_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL raises DecompressionBombError above 2x this
    with pytest.raises(UnsafeInput, match="image is too large"):
        open_image(png_bytes((30, 30)))


def test_not_an_image_is_refused() -> None:
    with pytest.raises(UnsafeInput, match="not an image") as info:
        open_image(b"just some text")
    assert info.value.reason == "not an image"


def test_corrupt_image_is_refused() -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    with pytest.raises(UnsafeInput, match="damaged") as info:
        open_image(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert info.value.reason == "corrupt image"


def test_image_over_the_byte_limit_is_refused() -> None:
    with pytest.raises(UnsafeInput, match="the limit is"):
        open_image(png_bytes((20, 20)), Limits(max_file_bytes=10))


def test_corrupt_compressed_data_is_refused(dest: Path) -> None:
    text = b"".join(b"line %d of a very ordinary text file\n" % i for i in range(2000))
    buf = bytearray(make_zip([("notes.txt", text)]))
    start = buf.index(b"notes.txt") + len("notes.txt")  # compressed data follows the local header's name
    for i in range(start + 50, start + 80):
        buf[i] ^= 0xFF
    assert_refused(bytes(buf), dest, r"'notes\.txt' is damaged")
