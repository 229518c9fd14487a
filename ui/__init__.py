"""ui: streamlit-only helpers shared by the app's pages: session state (`ui.state`) and rendering (`ui.render`).

Nothing in here trains or imports torch; tl_core must never import this package.
"""
