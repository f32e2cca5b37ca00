"""HTML bodies as readable plain text for the inbox: blocks, line breaks, lists and quotes."""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIP = {"head", "style", "script", "title", "template", "noscript", "xml"}
BLOCKS = {
    "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
    "tbody", "tfoot", "thead", "tr", "ul",
}  # fmt: skip
# Blocks a browser sets apart with a margin: an empty line before and after.
SPACED = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "pre", "dl"}
WHITESPACE = re.compile(r"[ \t\r\n\f]+")
TAG = re.compile(r"<[^>]*>")


class TextBuilder(HTMLParser):
    """Collects lines with their blockquote depth; a line's depth is fixed when it gets text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, list[str]]] = [(0, [])]  # (depth, pieces of text)
        self.depth = 0
        self.skipping = 0
        self.pre = 0
        self.lists: list[int | None] = []  # None for <ul>, the next number for <ol>
        self.spaced: list[bool] = []  # per open block: whether it is set apart by empty lines
        self.cells = 0

    def newline(self) -> None:
        self.lines.append((self.depth, []))

    def break_line(self) -> None:
        """Start a new line unless the current one is still empty."""
        if self.lines[-1][1]:
            self.newline()

    def blank_line(self) -> None:
        """Leave one empty line before what follows."""
        self.break_line()
        if len(self.lines) > 1 and self.lines[-2][1]:
            self.newline()

    def write(self, text: str) -> None:
        if not self.lines[-1][1]:
            if not self.pre:
                text = text.lstrip(" ")
            if not text:
                return
            self.lines[-1] = (self.depth, [])
        self.lines[-1][1].append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP:
            self.skipping += 1
        if self.skipping:
            return
        if tag == "br":
            self.newline()
        elif tag in ("td", "th"):
            if self.cells:
                self.write(" ")
            self.cells += 1
        elif tag in BLOCKS:
            css_class = (dict(attrs).get("class") or "").lower()
            # Outlook writes every line as <p class=MsoNormal> with no margin.
            spaced = tag in SPACED and "msonormal" not in css_class and not self.lists
            self.spaced.append(spaced)
            self.blank_line() if spaced else self.break_line()
            self.open_block(tag)

    def open_block(self, tag: str) -> None:
        if tag == "blockquote":
            self.depth += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "tr":
            self.cells = 0
        elif tag == "ul":
            self.lists.append(None)
        elif tag == "ol":
            self.lists.append(1)
        elif tag == "li":
            number = self.lists[-1] if self.lists else None
            self.write("- " if number is None else f"{number}. ")
            if number is not None:
                self.lists[-1] = number + 1
        elif tag == "hr":
            self.write("_" * 32)
            self.newline()
            self.spaced.pop()  # a void element: no end tag will close it

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP:
            self.skipping = max(0, self.skipping - 1)
            return
        if self.skipping or tag not in BLOCKS or tag == "hr":
            return
        spaced = self.spaced.pop() if self.spaced else False
        self.blank_line() if spaced else self.break_line()
        if tag == "blockquote" and self.depth:
            self.depth -= 1
        elif tag == "pre" and self.pre:
            self.pre -= 1
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP:  # <title/> and the like open nothing
            return
        self.handle_starttag(tag, attrs)
        if tag in BLOCKS and tag != "hr":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.write(first)
            for line in rest:
                self.newline()
                self.write(line)
            return
        text = WHITESPACE.sub(" ", data)
        if text.strip(" ") or self.lines[-1][1]:
            self.write(text)

    def text(self) -> str:
        lines = [
            (depth, "".join(parts).replace("\xa0", " ").rstrip()) for depth, parts in self.lines
        ]
        following = [0] * len(lines)  # the depth of the next line with text, for empty lines
        depth_after = 0
        for n in range(len(lines) - 1, -1, -1):
            following[n] = depth_after
            if lines[n][1]:
                depth_after = lines[n][0]
        out: list[str] = []
        for n, (depth, line) in enumerate(lines):
            if not line:
                if not out or not out[-1].strip(">"):
                    continue  # no empty line at the start, nor two in a row
                # An empty line belongs to the shallower of the quotes around it.
                depth = min(lines[n - 1][0] if lines[n - 1][1] else depth, following[n])
            prefix = ">" * depth
            out.append(f"{prefix} {line}" if prefix and line else prefix + line)
        while out and not out[-1].strip(">"):
            out.pop()
        return "\n".join(out)


def html_to_text(html: str) -> str:
    """Readable text for an HTML body; blockquotes come out as '>' quoted lines."""
    builder = TextBuilder()
    try:
        builder.feed(html)
        builder.close()
    except AssertionError:  # html.parser gives up on some marked sections (<![foo[ ... ]]>)
        return WHITESPACE.sub(" ", TAG.sub(" ", html)).strip()
    return builder.text()
