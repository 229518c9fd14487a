"""The playbook's colour-blind-safe palette (Okabe & Ito, 2008), shared by every chart and diagram.

Reuse these names rather than hex codes so that one change recolours the whole app. The eight
colours stay distinguishable under the common forms of colour blindness; still pair colour with a
label or a pattern wherever the difference matters.
"""

from __future__ import annotations

BLUE = "#0072B2"  # the app's primary colour: the chosen path, the current selection
ORANGE = "#E69F00"  # layers that fine-tune
GREEN = "#009E73"  # the new head; "good" outcomes
PINK = "#CC79A7"  # a second series next to blue
SKY = "#56B4E9"  # frozen layers ("ice")
VERMILLION = "#D55E00"  # training from scratch; warnings
YELLOW = "#F0E442"  # highlights behind black text
BLACK = "#000000"  # text and outlines

GREY = "#B0B0B0"  # not part of Okabe-Ito: inactive or removed things, always labelled as such
LIGHT = "#F2F2F2"  # not part of Okabe-Ito: backgrounds of inactive cells

OKABE_ITO: tuple[str, ...] = (BLUE, ORANGE, GREEN, PINK, SKY, VERMILLION, YELLOW, BLACK)  # series order

# How a layer group is treated by a plan, as drawn everywhere (quadrant page, train page, labs).
ROLE_COLOURS: dict[str, str] = {
    "frozen": SKY,
    "fine-tuned": ORANGE,
    "from scratch": VERMILLION,
    "new head": GREEN,
    "cut off": GREY,
}
