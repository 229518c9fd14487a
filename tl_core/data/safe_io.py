"""Untrusted files from learners: size limits, per-session folders, safe zip extraction and safe image decoding.

Everything a learner uploads passes through here before the rest of the library sees it. Bad input raises
`UnsafeInput`, whose message is written for the learner: what was wrong and what to do about it. Nothing in
this module imports torch or streamlit.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # PIL is imported lazily so that importing this module stays cheap
    from PIL import Image as PILImage

SESSION_ROOT_NAME = "tl-playbook"  # folder under the system temp folder that holds one folder per session
_CHUNK = 64 * 1024  # bytes copied per read while extracting
_ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeInput(ValueError):
    """An upload that was refused. The message is shown to the learner as-is.

    Attributes:
        reason: A short machine-readable category, for example "not an image", "corrupt image",
            "too large", "unsafe path", "not a zip".
    """

    def __init__(self, message: str, reason: str = "unsafe input") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Caps on what one upload may contain. Lower them in tests to exercise the checks cheaply."""

    max_upload_bytes: int = 200 * 2**20  # compressed size of one upload (matches .streamlit/config.toml)
    max_files: int = 5000  # entries in a zip, or images in one set of class uploads
    max_file_bytes: int = 25 * 2**20  # uncompressed size of one member or uploaded file
    max_total_bytes: int = 500 * 2**20  # uncompressed total of one upload
    max_ratio: float = 100.0  # uncompressed/compressed size of one member (zip-bomb check)
    ratio_min_bytes: int = 2**20  # members smaller than this skip the ratio check (tiny files compress well)
    max_image_pixels: int = 40_000_000  # width * height of one image (decompression-bomb check)
    max_array_bytes: int = 1024 * 2**20  # memory for the decoded dataset array, float32 (N, 3, S, S)


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


# ---- per-session folders ---------------------------------------------------------------------------------


def _check_private_dir(path: Path) -> None:
    """Refuse a folder that is a symlink, not a folder, or (on POSIX) owned by someone else or writable by others."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{path} must be a real folder, not a link or a file; remove it and try again.")
    if hasattr(os, "getuid"):
        if st.st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to another user; remove it or set TMPDIR to a private folder.")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(f"{path} is writable by other users; run `chmod 700 {path}` or remove it.")


def _sanitise(session_id: str) -> str:
    """A folder name made from a session id: safe characters only, plus a hash when anything was changed."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise ValueError("A session id is needed to make a private upload folder; got an empty one.")
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", session_id)[:64]
    if clean != session_id:
        clean += "-" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:12]
    return clean


def session_dir(session_id: str) -> Path:
    """The private temporary folder of one app session, created if needed.

    Args:
        session_id: The app's id for the session (any string; it is sanitised).

    Returns:
        `<tempfile.gettempdir()>/tl-playbook/<sanitised id>`, a folder with mode 0o700.

    Raises:
        ValueError: If the session id is empty.
        PermissionError: If the folder or its parent is a link, belongs to another user or is writable by others.
    """
    root = Path(tempfile.gettempdir()) / SESSION_ROOT_NAME
    root.mkdir(mode=0o700, exist_ok=True)
    _check_private_dir(root)
    path = root / _sanitise(session_id)
    path.mkdir(mode=0o700, exist_ok=True)
    _check_private_dir(path)
    os.chmod(path, 0o700)
    return path


def remove_session_dir(session_id: str) -> None:
    """Delete a session's temporary folder and everything in it. Safe to call more than once.

    Args:
        session_id: The same id given to `session_dir`.
    """
    path = Path(tempfile.gettempdir()) / SESSION_ROOT_NAME / _sanitise(session_id)
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


# ---- zip extraction --------------------------------------------------------------------------------------


def _member_parts(name: str) -> tuple[str, ...]:
    """Split a member name into safe path parts, or raise UnsafeInput naming the member."""
    if "\x00" in name:
        raise UnsafeInput(f"The zip member {name!r} has a NUL character in its name. Re-create the zip "
                          f"from ordinary folders.", "unsafe path")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise UnsafeInput(f"The zip member {name!r} has an absolute path. Zip the folders themselves "
                          f"(relative paths such as cats/1.jpg) and upload again.", "unsafe path")
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeInput(f"The zip member {name!r} points outside the zip ('..' in its path), which is not "
                          f"allowed. Re-create the zip from ordinary folders and upload again.", "unsafe path")
    return parts


def _check_members(zf: zipfile.ZipFile, limits: Limits) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check every member's header before anything is written. Returns (info, path parts) for each member."""
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise UnsafeInput(f"The zip has {len(infos)} entries; the limit is {limits.max_files}. "
                          f"Upload fewer images (split them into several smaller datasets).", "too many files")
    checked: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = _member_parts(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeInput(f"The zip member {name!r} is a symbolic link, which is not allowed. Zip real "
                              f"files only (on macOS/Linux: zip without -y).", "unsafe path")
        if info.flag_bits & 0x1:
            raise UnsafeInput(f"The zip member {name!r} is password-protected. Upload a zip without a password.",
                              "encrypted")
        if not parts:
            continue  # the zip's own root ("./")
        if parts in seen:
            raise UnsafeInput(f"The zip member {name!r} appears twice. Re-create the zip from ordinary folders.",
                              "unsafe path")
        seen.add(parts)
        if info.is_dir():
            checked.append((info, parts))
            continue
        if info.compress_type not in _ALLOWED_COMPRESSION:
            raise UnsafeInput(f"The zip member {name!r} uses an unsupported compression method "
                              f"(type {info.compress_type}). Re-create the zip with your system's ordinary "
                              f"'Compress'/'Send to zip' command.", "unsupported zip")
        if info.file_size > limits.max_file_bytes:
            raise UnsafeInput(f"The zip member {name!r} is {_mb(info.file_size)} uncompressed; the limit per "
                              f"file is {_mb(limits.max_file_bytes)}. Shrink or remove it.", "too large")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise UnsafeInput(f"The zip unpacks to more than {_mb(limits.max_total_bytes)} (reached at "
                              f"{name!r}). Upload fewer or smaller images.", "too large")
        if info.file_size >= limits.ratio_min_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise UnsafeInput(f"The zip member {name!r} expands {ratio:.0f}x when unpacked (the limit is "
                                  f"{limits.max_ratio:.0f}x); it looks like a zip bomb. Images do not compress "
                                  f"that much: upload the real image files.", "zip bomb")
        checked.append((info, parts))
    return checked


def _as_zipfile(data: bytes | BinaryIO, limits: Limits) -> zipfile.ZipFile:
    if isinstance(data, (bytes, bytearray, memoryview)):
        size = len(data)
        fileobj: BinaryIO = io.BytesIO(bytes(data))
    else:
        fileobj = data
        fileobj.seek(0, os.SEEK_END)
        size = fileobj.tell()
        fileobj.seek(0)
    if size > limits.max_upload_bytes:
        raise UnsafeInput(f"The upload is {_mb(size)}; the limit is {_mb(limits.max_upload_bytes)}. "
                          f"Upload fewer or smaller images.", "too large")
    try:
        return zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise UnsafeInput("This file is not a zip archive (or it is damaged). Put one folder per class in a "
                          "folder, compress it to a .zip and upload that.", "not a zip") from None


def _damaged(info: zipfile.ZipInfo, exc: BaseException) -> UnsafeInput:
    return UnsafeInput(f"The zip member {info.filename!r} is damaged: its contents do not match its header "
                       f"({exc}). Re-create the zip and upload again.", "corrupt zip")


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, limits: Limits) -> int:
    """Stream one member to `target`, enforcing the limits on the bytes actually produced. Returns bytes written."""
    cap = min(info.file_size, limits.max_file_bytes, budget)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    written = 0
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)
    fd = os.open(target, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        try:
            src = zf.open(info)
        except damaged as exc:
            raise _damaged(info, exc) from None
        with src:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except damaged as exc:  # bad deflate data, or a CRC mismatch because the header lied
                    raise _damaged(info, exc) from None
                if not chunk:
                    break
                written += len(chunk)
                if written > cap:
                    raise UnsafeInput(f"The zip member {info.filename!r} unpacks to more bytes than its header "
                                      f"says or the limits allow. Re-create the zip and upload again.", "too large")
                out.write(chunk)  # a full disk raises OSError here, reported by the caller
    return written


def safe_extract_zip(data: bytes | BinaryIO, dest: Path, limits: Limits = Limits()) -> list[Path]:
    """Unpack an uploaded zip into `dest`, refusing anything unsafe.

    Every header is checked before anything is written (paths, links, encryption, counts, declared sizes,
    compression ratio); the sizes are enforced again while streaming, because headers can lie. If a problem
    shows up during extraction, whatever was already written is removed again.

    Args:
        data: The zip file's bytes, or a seekable binary file.
        dest: The folder to unpack into; created if missing. It should be new or empty.
        limits: The caps to enforce.

    Returns:
        The extracted files (not folders), in archive order.

    Raises:
        UnsafeInput: naming the offending member and what to do, for: '..' traversal, absolute paths, symbolic
            links, encrypted members, unsupported compression, duplicate names, too many entries, a member or the
            total over the limits, a compression ratio over the limit, contents that disagree with the header,
            or data that is not a zip at all.
    """
    zf = _as_zipfile(data, limits)
    with zf:
        checked = _check_members(zf, limits)
        dest = Path(dest)
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        root = dest.resolve()
        created: list[Path] = []  # files and folders made here, for clean-up on failure
        files: list[Path] = []
        total = 0
        try:
            for info, parts in checked:
                target = root.joinpath(*parts)
                parent = target if info.is_dir() else target.parent
                # Create folders one level at a time, checking each one stays inside dest.
                cur = root
                for part in parent.relative_to(root).parts:
                    cur = cur / part
                    if not cur.exists():
                        cur.mkdir(mode=0o700)
                        created.append(cur)
                    if cur.is_symlink() or not cur.resolve().is_relative_to(root):
                        raise UnsafeInput(f"The zip member {info.filename!r} would be written outside the upload "
                                          f"folder. Re-create the zip from ordinary folders.", "unsafe path")
                if info.is_dir():
                    continue
                if not target.parent.resolve().joinpath(target.name).is_relative_to(root):
                    raise UnsafeInput(f"The zip member {info.filename!r} would be written outside the upload "
                                      f"folder. Re-create the zip from ordinary folders.", "unsafe path")
                if target.exists() or target.is_symlink():
                    raise UnsafeInput(f"The zip member {info.filename!r} clashes with another entry of the zip. "
                                      f"Re-create the zip from ordinary folders.", "unsafe path")
                created.append(target)
                total += _extract_one(zf, info, target, limits.max_total_bytes - total, limits)
                files.append(target)
        except BaseException as exc:
            for path in reversed(created):
                try:
                    path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
                except OSError:
                    pass
            if isinstance(exc, OSError):
                raise UnsafeInput(f"The zip could not be unpacked ({exc.strerror or exc}). Re-create it from "
                                  f"ordinary folders and upload again.", "unsafe path") from None
            raise
    return files


# ---- images ----------------------------------------------------------------------------------------------


def _to_rgb(im: PILImage.Image) -> PILImage.Image:
    """Convert any PIL mode to 8-bit RGB: transparency on white, 16/32-bit greyscale scaled (not clipped)."""
    import numpy as np
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I") or mode == "F":  # I;16, I;16B, I;16L, I;16N, I (32-bit int), F (float)
        a = np.asarray(im, dtype=np.float32)  # (H, W)
        lo, hi = float(a.min()), float(a.max())
        if mode.startswith("I;16"):
            a = a / 65535.0
        elif mode == "F" and lo >= 0.0 and hi <= 1.0:
            pass
        elif mode == "I" and lo >= 0 and hi <= 255:
            a = a / 255.0
        elif mode == "I" and lo >= 0 and hi <= 65535:
            a = a / 65535.0
        else:
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        grey = Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L")
        return grey.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info) \
        or (mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def decode_image(data: bytes, limits: Limits = Limits(), min_side: int | None = None) -> tuple[PILImage.Image, str]:
    """Decode untrusted image bytes to RGB, reporting the mode the file had.

    The pixel count is checked from the header before any pixels are decoded; then the file is verified and
    decoded. EXIF orientation (phone photos) is applied.

    Args:
        data: The file's bytes.
        limits: `max_file_bytes` and `max_image_pixels` are enforced.
        min_side: If set, JPEGs may be decoded at a reduced scale whose sides are still at least this (faster).

    Returns:
        (the image in mode "RGB", the file's original PIL mode such as "CMYK", "I;16", "P", "RGBA", "L").

    Raises:
        UnsafeInput: reason "too large" (bytes or pixels), "not an image" or "corrupt image".
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > limits.max_file_bytes:
        raise UnsafeInput(f"The image is {_mb(len(data))}; the limit is {_mb(limits.max_file_bytes)}. "
                          f"Use a smaller image.", "too large")
    bomb = (f"The image is too large to open safely (more than {limits.max_image_pixels:,} pixels). "
            f"Resize it (for example to 1000 x 1000) and upload again.")
    decode_errors = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
                     struct.error, ZeroDivisionError, MemoryError)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
            if w * h > limits.max_image_pixels:
                raise UnsafeInput(bomb + f" This one is {w} x {h}.", "too large")
            probe.verify()
        im = Image.open(io.BytesIO(data))
        if min_side and im.format == "JPEG":
            im.draft(None, (min_side, min_side))
        im.load()
        mode = im.mode
        try:
            im = ImageOps.exif_transpose(im) or im  # phone photos: apply the EXIF rotation
        except Exception:  # a broken EXIF block is not worth refusing the image for
            pass
        rgb = _to_rgb(im)
        rgb.load()
    except UnsafeInput:
        raise
    except Image.DecompressionBombError:  # PIL's own limit, if it is lower than ours
        raise UnsafeInput(bomb, "too large") from None
    except UnidentifiedImageError:
        raise UnsafeInput("This file is not an image PIL can read (use JPEG, PNG, GIF, BMP, TIFF or WebP).",
                          "not an image") from None
    except decode_errors as exc:
        raise UnsafeInput(f"This image is damaged and cannot be decoded ({type(exc).__name__}). Re-save or "
                          f"replace it.", "corrupt image") from None
    return rgb, mode


def open_image(data: bytes, limits: Limits = Limits()) -> PILImage.Image:
    """Decode untrusted image bytes safely and return an RGB image.

    Args:
        data: The file's bytes.
        limits: `max_file_bytes` and `max_image_pixels` are enforced.

    Returns:
        A PIL image in mode "RGB" (transparency composited on white, 16-bit greyscale scaled to 8 bits).

    Raises:
        UnsafeInput: "image is too large ...", "not an image ..." or "damaged ..." with what to do.
    """
    return decode_image(data, limits)[0]
