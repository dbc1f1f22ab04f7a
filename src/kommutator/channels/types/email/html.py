"""Sanitise mail HTML for display and turn mail HTML into readable plain text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

# Mail HTML is shown inside our web app: keep formatting and links, drop anything that runs code, loads
# frames or restyles the page (no style/class/id: CSS overlays and DOM clobbering).
_SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "wbr",
}  # fmt: skip
_SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "ol": {"start"},
    "*": {"dir", "lang"},
}
_SAFE_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_DROP_WITH_CONTENT = {
    "script", "style", "title", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
    "template", "textarea", "select", "svg", "math", "xml",
}  # fmt: skip

_MAX_HTML_CHARS = 2_000_000  # sanitised and shown
MAX_TEXT_HTML = 500_000  # turned into text (html.parser needs ~1 s per MB)
_MAX_DEPTH = 400

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_SKIP = _DROP_WITH_CONTENT | {"head"}
_AUTO_CLOSE = {"p", "li", "td", "th", "tr", "option", "dt", "dd"}
_LINE_BLOCKS = {
    "div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "nav", "aside", "address", "center",
    "form", "fieldset", "figure", "figcaption", "main", "caption", "table", "body", "html", "tbody", "thead",
}  # fmt: skip
_PARAGRAPH_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "pre", "dl"}
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\ufeff]")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


def sanitize_html(html: str) -> str:
    """Return mail HTML safe to show in the web app: no scripts, frames, handlers or javascript: URLs."""
    return nh3.clean(
        html[:_MAX_HTML_CHARS],
        tags=_SAFE_TAGS,
        attributes=_SAFE_ATTRIBUTES,
        url_schemes=_SAFE_URL_SCHEMES,
        clean_content_tags=_DROP_WITH_CONTENT,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_relative="deny",
        strip_comments=True,
    ).strip()


@dataclass(eq=False)
class Node:
    """One element of a forgiving HTML tree; text nodes have tag "#text"."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    text: str = ""

    def iter(self) -> Iterator[Node]:
        """Yield this node and its descendants in document order."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def text_content(self, limit: int = 10_000) -> str:
        """Return the concatenated text below this node, up to about limit characters."""
        out: list[str] = []
        size = 0
        for node in self.iter():
            if node.tag == "#text":
                out.append(node.text)
                size += len(node.text)
                if size >= limit:
                    break
        return "".join(out)

    def has_class(self, *names: str) -> bool:
        classes = self.attrs.get("class", "").lower().split()
        return any(name in classes for name in names)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack: list[Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        current = self.stack[-1]
        if tag in _AUTO_CLOSE and current.tag == tag and len(self.stack) > 1:
            self.stack.pop()
            current = self.stack[-1]
        node = Node(tag, {k.lower(): (v or "") for k, v in attrs}, parent=current)
        current.children.append(node)
        if tag not in _VOID and len(self.stack) < _MAX_DEPTH:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() not in _VOID and self.stack[-1].tag == tag.lower() and len(self.stack) > 1:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        current = self.stack[-1]
        current.children.append(Node("#text", parent=current, text=data))


def parse_html(html: str) -> Node:
    """Parse HTML into a Node tree without ever raising; broken markup yields what could be read."""
    builder = _TreeBuilder()
    try:
        builder.feed(html[:MAX_TEXT_HTML])
        builder.close()
    except Exception:
        fallback = Node("#root")
        fallback.children.append(Node("#text", parent=fallback, text=re.sub(r"<[^>]*>", " ", html[:MAX_TEXT_HTML])))
        return fallback
    return builder.root


def remove_from(node: Node) -> None:
    """Detach node and everything after it in document order."""
    current = node
    while current.parent is not None:
        parent = current.parent
        index = next(i for i, child in enumerate(parent.children) if child is current)
        cut = index if current is node else index + 1
        parent.children = parent.children[:cut]
        current = parent
    node.parent = None


class _TextWriter:
    """Accumulate rendered text, keeping track of line starts, quote depth and list indentation."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.last_char = ""
        self.newlines = 0  # line breaks at the end of the output; a line of bare ">" counts as empty
        self.quote_depth = 0
        self.indent = 0
        self.link_texts: list[list[str]] = []

    def _write(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.last_char = text[-1]
        body = text.rstrip("\n")
        if not body.strip(">"):
            self.newlines += text.count("\n")
        else:
            self.newlines = len(text) - len(body)
        for buffer in self.link_texts:
            buffer.append(text)

    def at_line_start(self) -> bool:
        return not self.parts or self.last_char == "\n"

    def text(self, data: str, *, pre: bool = False) -> None:
        if not pre:
            data = _SPACES.sub(" ", data)
            if self.at_line_start() or self.last_char == " ":
                data = data.lstrip(" ")
        if not data:
            return
        if self.at_line_start():
            self._write("> " * self.quote_depth + " " * self.indent)
        if pre and "\n" in data and self.quote_depth:
            data = data.replace("\n", "\n" + "> " * self.quote_depth)
        self._write(data)

    def _newline(self, count: int) -> None:
        for _ in range(count):
            if self.quote_depth and self.at_line_start():
                self._write(">" * self.quote_depth)
            self._write("\n")

    def line_break(self) -> None:
        self._newline(1)

    def ensure_lines(self, count: int) -> None:
        """Make the output end with at least count line breaks (nothing at the very start)."""
        if self.parts and self.newlines < count:
            self._newline(count - self.newlines)

    def result(self) -> str:
        text = _INVISIBLE.sub("", "".join(self.parts)).replace("\xa0", " ")
        lines = [line.rstrip() for line in text.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        return text.strip("\n")


def render_text(root: Node) -> str:
    """Render a Node tree as readable plain text: paragraphs, line breaks, lists, links as "text (url)"."""
    out = _TextWriter()
    # Each stack entry: (node, entering); leaving events let us close blocks, quotes and links.
    stack: list[tuple[Node, bool]] = [(root, True)]
    pre_depth = 0
    list_counters: list[int] = []
    while stack:
        node, entering = stack.pop()
        tag = node.tag
        if tag == "#text":
            out.text(node.text, pre=pre_depth > 0)
            continue
        if entering:
            if tag in _SKIP or _HIDDEN_STYLE.search(node.attrs.get("style", "")):
                continue
            stack.append((node, False))
            stack.extend((child, True) for child in reversed(node.children))
            if tag == "br":
                out.line_break()
            elif tag == "hr":
                out.ensure_lines(1)
                out.text("---")
                out.ensure_lines(1)
            elif tag in _PARAGRAPH_BLOCKS and not _is_line_like(node, list_counters):
                out.ensure_lines(2)
            elif tag in _LINE_BLOCKS:
                out.ensure_lines(1)
            elif tag in ("td", "th") and not out.at_line_start():
                out.text(" ")
            if tag == "blockquote":
                out.quote_depth += 1
            elif tag == "pre":
                pre_depth += 1
            elif tag in ("ul", "ol"):
                list_counters.append(0 if tag == "ol" else -1)
                out.indent += 2 if len(list_counters) > 1 else 0
            elif tag == "li":
                marker = "- "
                if list_counters and list_counters[-1] >= 0:
                    list_counters[-1] += 1
                    marker = f"{list_counters[-1]}. "
                out.text(marker)
            elif tag == "a":
                out.link_texts.append([])
            continue
        # leaving
        if tag == "a" and out.link_texts:
            label = "".join(out.link_texts.pop()).strip()
            _write_link_target(out, label, node.attrs.get("href", "").strip())
        elif tag == "blockquote":
            out.quote_depth = max(0, out.quote_depth - 1)
        elif tag == "pre":
            pre_depth = max(0, pre_depth - 1)
        elif tag in ("ul", "ol") and list_counters:
            list_counters.pop()
            out.indent = max(0, out.indent - (2 if list_counters else 0))
        if tag in _PARAGRAPH_BLOCKS and not _is_line_like(node, list_counters):
            out.ensure_lines(2)
        elif tag in _LINE_BLOCKS or tag == "p":
            out.ensure_lines(1)
    return out.result()


def _is_line_like(node: Node, list_counters: list[int]) -> bool:
    # Word-generated mail makes every line a zero-margin <p class=MsoNormal>; nested lists sit in their item.
    if node.tag == "p":
        return node.has_class("msonormal")
    return node.tag in ("ul", "ol") and bool(list_counters)


def _write_link_target(out: _TextWriter, label: str, href: str) -> None:
    lowered = href.lower()
    if lowered.startswith("mailto:"):
        target = href[7:].split("?", 1)[0]
    elif lowered.startswith(("http://", "https://", "ftp://", "tel:")):
        target = href
    else:
        return
    if not target or target in label or target.rstrip("/") == label.rstrip("/"):
        return
    out.text(f" ({target})" if label else target)


def html_to_text(html: str) -> str:
    """Convert HTML to readable plain text."""
    return render_text(parse_html(html))
