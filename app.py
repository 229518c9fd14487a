"""The Transfer Learning Playbook's entry point: registers the pages, holds the app-wide sidebar, runs the page.

Run with `streamlit run app.py`. To add a page, add one line to PAGES; sections appear in the order
they first occur there.
"""

from __future__ import annotations

import streamlit as st

from tl_core.device import describe_device
from ui.state import current_plan, init_state, on_seed_change

# (section, page file, title, icon). Emoji icons only: ":material/...:" icons fetch web fonts, and the
# app must work offline. The first page is the default.
PAGES: list[tuple[str, str, str, str]] = [
    ("Decide", "pages/welcome.py", "What is transfer learning", "🎓"),
    ("Decide", "pages/matrix.py", "Domain & task matrix", "🧮"),
    ("Decide", "pages/quadrant.py", "Size vs similarity", "🧭"),
    ("Train", "pages/train.py", "Train live", "🏋️"),
    ("Train", "pages/race.py", "The race", "🏁"),
    ("Labs", "pages/matrix_lab.py", "The matrix, live", "🧪"),
    ("Labs", "pages/quadrant_lab.py", "Quadrant lab", "🗺️"),
    ("Explore", "pages/architectures.py", "Architectures", "🏛️"),
    ("Your data", "pages/explorer.py", "Pretrained explorer", "🔍"),
    ("Your data", "pages/own_data.py", "Your own images", "📁"),
]

st.set_page_config(page_title="Transfer Learning Playbook", page_icon="🎓", layout="wide")
init_state()

sections: dict[str, list[st.Page]] = {}
for i, (section, path, title, icon) in enumerate(PAGES):
    sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon, default=i == 0))
page = st.navigation(sections)

with st.sidebar:
    st.markdown("**Current plan**")
    st.caption(current_plan().describe())
    st.markdown(f"**Device:** {describe_device()}")
    st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed", on_change=on_seed_change,
                    help="Seeds the data, the weights and the shuffling, so a run can be repeated exactly.")

page.run()
