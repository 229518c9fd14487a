"""Learner-supplied text made safe to show: escaped for Markdown (pages) and for HTML (plotly labels).

A class folder called `[go](javascript:alert(1))` must read as those characters, not become a link; a file called
`**a**.png` must not turn bold, and `<b>x</b>` in a chart's axis must not become markup. Every place that shows a
name a learner chose (class names, file names, messages that quote them) passes it through `md` (for st.markdown,
st.caption, st.success/warning/error, widget labels, image captions, chart takeaways) or `html` (for text inside a
plotly figure). Plain-text widgets (st.dataframe cells, selectbox options) need neither. No streamlit here.
"""

from __future__ import annotations

import html as _html
import re

# Characters that Markdown, GitHub-flavoured Markdown (autolinks: "www.", "http:", "a@b.c") or Streamlit's own
# directives (:red[...], :material/icon:, $math$) give a meaning. Each becomes a numeric character reference,
# which Markdown decodes into the plain character after parsing: a backslash escape is not enough, because
# autolinks and Streamlit's icon directive are recognised across backslash escapes.
_MARKDOWN = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|~$:=\"'&^@/%]")
_SPACE = re.compile(r"[\r\n\t\f\v]+")
# Autolinks ("www.x.y", "http://x.y", "a@b.c") are found in the decoded text even so: an invisible word joiner before
# every "." and after every ":" and "@" breaks them without changing what the learner reads.
JOINER = "\u2060"
_AUTOLINK = re.compile(r"[.:@]")


def md(text: object) -> str:
    """The text with every character Markdown (or a Streamlit directive) could act on written as a character
    reference, and line breaks turned into spaces (a name is one line), so it renders as exactly those characters
    (plus an invisible word joiner next to ".", ":" and "@", which stops autolinks).

    Args:
        text: A learner-supplied name or a message quoting one (anything; it is turned into a str).

    Returns:
        The escaped text, for inside a Markdown string.
    """
    joined = _AUTOLINK.sub(lambda m: JOINER + "." if m.group() == "." else m.group() + JOINER,
                           _SPACE.sub(" ", str(text)))
    return _MARKDOWN.sub(lambda m: f"&#{ord(m.group())};", joined)


def html(text: object) -> str:
    """The text with <, >, & and quotes as HTML entities, for labels inside a plotly figure (which reads a few tags
    such as <b> and <a href>)."""
    return _html.escape(str(text), quote=True)
