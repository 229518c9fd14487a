"""Command line: fill the torch hub cache with ImageNet weights on a connected machine, for copying to a server.

    python -m tl_core.models.fetch_weights resnet18 mobilenet_v3_small   # download (with a progress line)
    python -m tl_core.models.fetch_weights --list                        # what is cached here, and where

Offline, it fails with one clear line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO


class _Progress:
    """A one-line progress display: progress(bytes_done, bytes_total) rewrites the line in place."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name  # file being downloaded
        self.stream = stream  # where the line goes
        self.started = False  # something was written, so a newline is due before the next message

    def __call__(self, done: int, total: int) -> None:
        if total:
            line = f"{done / 2**20:7.1f} / {total / 2**20:.1f} MB ({100 * done / total:3.0f}%)"
        else:
            line = f"{done / 2**20:7.1f} MB"
        self.stream.write(f"\r  {self.name}: {line}")
        self.stream.flush()
        self.started = True

    def end(self) -> None:
        if self.started:
            self.stream.write("\n")
            self.started = False


def _list(out: TextIO) -> int:
    from tl_core.models.weights import cache_dir, torchvision_archs, weights_status

    out.write(f"Cache folder: {cache_dir()}\n")
    for arch in torchvision_archs():
        s = weights_status(arch)
        state = "cached " if s.available else "missing"
        out.write(f"  {arch:<20} {state}  {s.size_mb:7.1f} MB  {s.filename}\n")
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; None reads sys.argv.
        out: Where results go (default stdout).
        err: Where progress and errors go (default stderr).

    Returns:
        The exit code: 0 on success, 1 if any download failed or an architecture is unknown.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m tl_core.models.fetch_weights",
        description="Download torchvision ImageNet weights into the torch hub cache, to copy to an offline server.")
    parser.add_argument("archs", nargs="*", help="architectures, for example resnet18 mobilenet_v3_small")
    parser.add_argument("--list", action="store_true", help="show which weights are cached and where")
    args = parser.parse_args(argv)
    if args.list:
        return _list(out)
    if not args.archs:
        parser.print_usage(err)
        err.write("error: name at least one architecture, or use --list.\n")
        return 1

    from tl_core.models.weights import WeightsUnavailable, download_weights, torchvision_archs, weights_status

    known = torchvision_archs()
    unknown = [a for a in args.archs if a not in known]
    if unknown:
        err.write(f"error: no ImageNet weights for {unknown[0]!r}; choose from: {', '.join(known)}.\n")
        return 1
    for arch in args.archs:
        status = weights_status(arch)
        if status.available:
            out.write(f"{arch}: already cached: {status.path}\n")
            continue
        progress = _Progress(status.filename, err)
        try:
            download_weights(arch, progress)
        except WeightsUnavailable as exc:
            progress.end()
            err.write(f"error: {exc.reason or 'download failed.'} This machine looks offline or cannot reach "
                      f"download.pytorch.org; run this command on a machine with internet access.\n")
            return 1
        progress.end()
        out.write(f"{arch}: downloaded {status.filename}\n")
    folder = weights_status(args.archs[0]).path.parent
    out.write(f"\nCache folder: {folder}\n")
    out.write("Copy these files into the same folder on the server (the app shows the server's folder; it is "
              "<TORCH_HOME>/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints):\n")
    for arch in args.archs:
        out.write(f"  {weights_status(arch).path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
