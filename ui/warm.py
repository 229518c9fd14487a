"""Warm-up: import torch and the models' modules in the background once the server has served its first page.

The first visit to a page that trains (Train, the race, Architectures, the labs) would otherwise wait 1-4 s for
torch, pandas, plotly and the library to import. `start()` (app.py calls it after every run; it acts once per
process) imports them on a daemon thread after the first page is drawn, so the welcome page is not slowed down, and
loads the shipped source model. torchvision is not among them: it loads (about 2 s) only where an ImageNet
architecture is used (tl_core.models.weights.imagenet_weights, tl_core.models.networks.build_model). A page that still needs an import in flight simply waits for that
module; app.py shows its title and a placeholder meanwhile and lets it wait for the whole warm-up (`ready`, `wait`):
code that peeks at sys.modules (Streamlit's own does) must never see a half-imported module.
"""

from __future__ import annotations

import importlib
import threading
import time
import traceback

# What the pages that train import (directly or through ui.*), heaviest first.
MODULES: tuple[str, ...] = (
    "torch", "pandas", "plotly.graph_objects",
    "tl_core.training.trainer", "tl_core.data.datasets", "tl_core.models.source", "tl_core.models.weights",
    "tl_core.models.inference", "tl_core.models.summary", "tl_core.models.demos", "tl_core.experiments.race",
    "tl_core.experiments.lab", "tl_core.experiments.similarity", "tl_core.jobs.work", "tl_core.training.codegen",
    "tl_core.training.estimate", "tl_core.data.own", "ui.charts.training", "ui.charts.race", "ui.charts.labs",
    "ui.charts.architectures", "ui.charts.own_data", "ui.results", "ui.live", "ui.cached",
)

_started = threading.Event()
_done = threading.Event()
_lock = threading.Lock()
timings: dict[str, float] = {}  # module -> seconds its import took here (for the startup benchmark's notes)


def _work() -> None:
    for name in MODULES:
        t0 = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that fails here fails again, with its message, on its page
            traceback.print_exc()
        timings[name] = round(time.perf_counter() - t0, 3)
    try:
        from tl_core.models.source import load_source_model

        load_source_model()
    except Exception:  # noqa: BLE001 - the race page reports a broken source model itself
        traceback.print_exc()
    _done.set()


def start() -> None:
    """Start the warm-up thread (once per process; later calls do nothing)."""
    with _lock:
        if _started.is_set():
            return
        _started.set()
    threading.Thread(target=_work, name="tl-warm-imports", daemon=True).start()


def ready() -> bool:
    """Whether every warm-up import has finished (pages then draw at once)."""
    return _done.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (for tests and benchmarks)."""
    return _done.wait(timeout)
