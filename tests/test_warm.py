"""The background warm-up (ui.warm): it imports what the pages that train need once per process, whole."""

from __future__ import annotations

import importlib
import sys

from ui import warm


def test_the_warm_up_imports_every_module_whole_and_only_once():
    warm.start()
    warm.start()  # a second start does nothing
    assert warm.wait(120) and warm.ready()
    for name in warm.MODULES:
        module = sys.modules[name]  # imported ...
        assert not getattr(getattr(module, "__spec__", None), "_initializing", False)  # ... and whole
        assert importlib.import_module(name) is module
    assert "torch" in warm.timings and all(t >= 0 for t in warm.timings.values())
