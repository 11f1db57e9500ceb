"""Make untrusted text inert in a Markdown table cell (GitHub-flavoured Markdown and HTML)."""

import html
import re

# Line breaks end a table row; bidi overrides reorder what readers see; other controls confuse.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
# `|` splits cells; [ ] make links and images; ` * _ ~ make code and emphasis; \ escapes;
# : and @ would let GitHub autolink a bare URL or e-mail address.
_MARKDOWN = re.compile(r"([\\`*_~\[\]|:@])")
_MAX_LENGTH = 160


class Trusted(str):
    """Markdown the renderer built itself from escaped parts; emitted unchanged."""


def md(text: object, limit: int = _MAX_LENGTH) -> str:
    """`text` as a single line of literal Markdown text: no markup, links, HTML or cell breaks."""
    plain = _CONTROL.sub(" ", str(text)).strip()
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    return html.escape(_MARKDOWN.sub(r"\\\1", plain), quote=False)


def finalize(value: object) -> str:
    """Jinja's finalize hook: every `{{ }}` is escaped unless the renderer marked it Trusted."""
    if isinstance(value, Trusted):
        return value
    return md(value)
