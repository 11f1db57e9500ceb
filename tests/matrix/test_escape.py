"""Untrusted text becomes inert Markdown: no cell breaks, links, code, emphasis or HTML."""

import pytest

from matrix.escape import Trusted, finalize, md


@pytest.mark.parametrize(("text", "escaped"), [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
    ("a | b", "a \\| b"),
    ("line\nbreak\r\nagain", "line break again"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("[link](http://x)", "\\[link\\](http\\://x)"),
    ("`code`", "\\`code\\`"),
    ("*b* _i_ ~s~", "\\*b\\* \\_i\\_ \\~s\\~"),
    ("a\\|b", "a\\\\\\|b"),
    ("&lt;", "&amp;lt;"),
    ("mail me@x.com", "mail me\\@x.com"),
    ("right\u202eto left", "right to left"),
])
def test_md(text, escaped):
    assert md(text) == escaped


def test_md_caps_length():
    assert md("x" * 500) == "x" * 159 + "…"


def test_finalize_escapes_unless_trusted():
    assert finalize("a|b") == "a\\|b"
    assert finalize(Trusted("[a](b)")) == "[a](b)"
    assert finalize(3) == "3"
