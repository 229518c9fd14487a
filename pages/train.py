"""Page (placeholder until the training engine lands): shows the plan the Train page will run."""

from __future__ import annotations

import streamlit as st

from ui.state import current_plan, init_state

init_state()  # app.py did this already, except on a cold start that deep-links here (see ui.state)
st.title("🏋️ Train live")
st.markdown(f"**Plan:** {current_plan().describe()}")
st.markdown(f"**Data:** shapes world, {st.session_state['data.n_per_class']} target images per class at "
            f"similarity {st.session_state['data.similarity']:g}.")
st.info("Training arrives with the engine.")
