"""ui.escape: learner-supplied names shown as exactly their characters, in Markdown and inside plotly figures."""

from __future__ import annotations

import html
import re

import pytest

from ui.escape import JOINER, html as html_escape, md

NAMES = ["[go](javascript:alert(1))", "**bold**", "<b>x</b>", ":red[r]", ":material/home:", "$x^2$", "a_b_c",
         "# head", "1. one", "- item", "`code`", "~~s~~", "a\\b", "<script>alert(1)</script>", "http://x.y",
         "www.example.com", "a@b.com", "c&d 'q' \"dq\"", "plain name 7", "ünïcode ✓"]


@pytest.mark.parametrize("name", NAMES)
def test_markdown_escape_keeps_every_character_and_leaves_nothing_markdown_can_act_on(name: str) -> None:
    out = md(name)
    assert html.unescape(out).replace(JOINER, "") == name  # what the learner reads: exactly the name
    assert not any(ch in re.sub(r"&#\d+;", "", out) for ch in "[]()*_`<>#$:~|!\\\"'&")  # all as references
    for autolink in ("www.", "http://", "a@b"):  # autolinks are recognised even across escapes: broken up
        assert autolink not in html.unescape(out)


def test_line_breaks_in_a_name_become_spaces_and_plain_names_read_the_same() -> None:
    assert md("two\nlines\r\nhere") == "two lines here"
    assert md("plain name 7") == "plain name 7" and md(42) == "42"


def test_html_escape_for_plotly_labels() -> None:
    assert html_escape('<a href="javascript:x">go</a> & <b>') == (
        "&lt;a href=&quot;javascript:x&quot;&gt;go&lt;/a&gt; &amp; &lt;b&gt;")
    assert html_escape("cats") == "cats"
