"""An article body as HTML built from escaped text: paragraphs, lists, headings and nothing else."""

from __future__ import annotations

import re
from html import escape

_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")
_HEADING = re.compile(r"^\s*(#{1,3})\s+(.*)$")


def render_body(body: str) -> str:
    """Blank lines split paragraphs; "- " and "1. " lines make lists; "# "/"## " lines headings (h2), "### " h3.

    Every piece of text is escaped: whatever markup an author types is shown as the characters typed.
    """
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    kind = ""  # "ul" or "ol" while a list is open

    def close() -> None:
        nonlocal kind
        if paragraph:
            out.append("<p>" + "<br>\n".join(escape(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append(f"<{kind}>" + "".join(f"<li>{escape(i)}</li>" for i in items) + f"</{kind}>")
            items.clear()
        kind = ""

    for raw in body.splitlines():
        line = raw.strip()
        bullet, number, heading = _BULLET.match(line), _NUMBER.match(line), _HEADING.match(line)
        if not line:
            close()
        elif heading:
            close()
            level = 2 if len(heading.group(1)) <= 2 else 3
            out.append(f"<h{level}>{escape(heading.group(2))}</h{level}>")
        elif item := bullet or number:
            want = "ul" if bullet else "ol"
            if paragraph or kind != want:
                close()
            kind = want
            items.append(item.group(1))
        elif items:  # a line under a list item continues it
            items[-1] += " " + line
        else:
            paragraph.append(line)
    close()
    return "\n".join(out)
