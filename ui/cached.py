"""The pretrained models the pages share, loaded once per server process with st.cache_resource (read-only).

Every session gets the same objects: nothing may train or modify them. The trainer deep-copies a base model before
training (tl_core.training.trainer.build_for_plan), and inference helpers only run them in eval mode. Nothing here downloads:
ImageNet weights come from the local torch hub cache only.
"""

from __future__ import annotations

import streamlit as st
from torch import nn

from tl_core.models.source import SourceModel, load_source_model
from tl_core.models.weights import load_imagenet_model


@st.cache_resource(max_entries=3, show_spinner="Loading the ImageNet weights from this server's cache…")
def imagenet_model(arch: str) -> nn.Module:
    """A torchvision model with its ImageNet weights from the local cache (never downloads).

    Raises:
        ValueError: (WeightsUnavailable) if the weights are not on this machine; nothing is cached then.
    """
    return load_imagenet_model(arch, allow_download=False)


@st.cache_resource(show_spinner=False)
def shapes_model() -> SourceModel:
    """The shipped ShapesNet with its manifest (classes, accuracy)."""
    return load_source_model()
