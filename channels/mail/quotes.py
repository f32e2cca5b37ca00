"""Reply stripping for the inbox view: quoted history, attributions, signatures, mobile footers."""

from __future__ import annotations

import re

QUOTED = re.compile(r"^\s*>(?!\d)")  # '>' quoting, but not ">50 pieces"
# "On <date>, <name> wrote:" and its Dutch, German, French and Spanish forms, Apple Mail's included.
ATTRIBUTION = re.compile(
    r"^(?:on|op|am|le|el)\s(?=.*\d).*?"
    r"\b(?:wrote|schreef|schrieb|geschreven|geschrieben|a\s+écrit|escribió)\b[^:]*:$",
    re.IGNORECASE,
)
# "Jan Visser schreef op 12-3-2024 om 10:15:" and the bare "Jan Visser wrote:".
ATTRIBUTION_AFTER_NAME = re.compile(
    r"^.{1,100}\b(?:wrote|schreef|schrieb|a\s+écrit)(?:\s+(?:on|op|am|le)\s.*\d.*)?\s*:$",
    re.IGNORECASE,
)
MAX_ATTRIBUTION = 400  # longer is a paragraph, and would make the patterns above slow
MACHINE_WRITTEN = re.compile(r"\d{1,2}:\d{2}|@")  # a time or an address: not a person's sentence
ORIGINAL_MESSAGE = re.compile(
    r"^-{2,}\s*(?:original message|originalnachricht|original-nachricht|ursprüngliche nachricht"
    r"|oorspronkelijk bericht|origineel bericht|message d'origine|mensaje original)\s*-{2,}$",
    re.IGNORECASE,
)
FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|doorgestuurd bericht|weitergeleitete nachricht"
    r"|message transféré|mensaje reenviado)\s*-{2,}"
    r"|(?:begin forwarded message|begin doorgestuurd bericht|anfang der weitergeleiteten"
    r" (?:e-mail|nachricht)|début du message réexpédié)\s*:)$",
    re.IGNORECASE,
)
HEADER_FIELD = re.compile(
    r"^\*?(from|van|von|de|sent|date|datum|verzonden|gesendet|envoyé|to|aan|an|à|cc|bcc"
    r"|subject|onderwerp|betreff|objet)\s*:\*?(?:\s|$)",
    re.IGNORECASE,
)
FROM_FIELDS = {"from", "van", "von", "de"}
SEPARATOR = re.compile(r"^[-_=*~]{3,}$")
SIGNATURE = ("--", "-- ")
MOBILE_FOOTER = re.compile(
    r"^(?:"
    r"(?:sent|verzonden|verstuurd|gesendet|envoyé|enviado)\s+"
    r"(?:from|with|via|using|vanaf|vanuit|met|von|mit|de|depuis|desde)\s.{1,60}"
    r"|von\s+meinem\s.{1,50}\sgesendet"
    r"|(?:get|download)\s+outlook\s+(?:for|voor|für)\s+(?:ios|android)"
    r"|outlook\s+(?:voor|für)\s+(?:ios|android)\s+(?:downloaden|herunterladen)"
    r")\.?\s*(?:<[^>]*>)?$",
    re.IGNORECASE,
)


def strip_reply(text: str, *, forwarded: bool = False) -> str:
    """The new part of a reply: no quoted history, attribution lines, '-- ' signature or footer.

    With `forwarded` (a Fwd:/Doorst:/WG: subject) the history is the content: it is kept from
    the first header block or attribution on, and only the forwarder's own note is cleaned.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    plain = [line.replace("\xa0", " ").strip() for line in lines]
    start, is_forward, inline_attributions = find_history(plain)
    kept = [
        lines[n]
        for n in range(start)
        if n not in inline_attributions and not QUOTED.match(plain[n])
    ]
    kept = drop_footers(cut_signature(kept))
    if start < len(lines) and (is_forward or forwarded):
        kept = [*kept, "", *lines[start:]]
    return tidy(kept)


def find_history(plain: list[str]) -> tuple[int, bool, set[int]]:
    """Where quoted history starts, whether it is forwarded, and inline-answered attributions.

    The start is len(plain) when nothing is quoted; the attributions are those of quotes
    answered below them (bottom-posting, interleaved answers), dropped with their quotes.
    """
    inline: set[int] = set()
    i = 0
    while i < len(plain):
        line = plain[i]
        if not line or QUOTED.match(line):
            i += 1
            continue
        if FORWARD.match(line):
            return i, True, inline
        if ORIGINAL_MESSAGE.match(line) or header_block_at(plain, i):
            return i, False, inline
        span = attribution_at(plain, i)
        if span:
            below = first_text(plain, i + span)
            if below is not None and QUOTED.match(plain[below]):
                if not has_reply_below(plain, below):
                    return i, False, inline
                inline.update(range(i, i + span))
                i += span
                continue
            if MACHINE_WRITTEN.search(" ".join(plain[i : i + span])):
                return i, False, inline  # an attribution above unquoted history (Yahoo)
        i += 1
    return len(plain), False, inline


def attribution_at(plain: list[str], i: int) -> int:
    """How many lines (1-3) the attribution starting at line i spans; 0 if there is none."""
    joined = ""
    for span in range(1, 4):
        n = i + span - 1
        if n >= len(plain) or not plain[n] or QUOTED.match(plain[n]):
            return 0
        if span > 1 and plain[i].endswith((".", "!", "?")):
            return 0  # a sentence, not a wrapped attribution
        joined = f"{joined} {plain[n]}".strip()
        if len(joined) > MAX_ATTRIBUTION:
            return 0
        if ATTRIBUTION.match(joined):
            return span
        if span == 1 and ATTRIBUTION_AFTER_NAME.match(joined):
            below = first_text(plain, i + 1)
            if below is not None and QUOTED.match(plain[below]):
                return 1
    return 0


def header_block_at(plain: list[str], i: int) -> bool:
    """An Outlook-style From/Sent/To/Subject block (any order or language) starts at line i."""
    first = HEADER_FIELD.match(plain[i])
    if not first or not plain[i][first.end() :].strip("* "):
        return False
    fields = {first.group(1).lower()}
    for line in [line for line in plain[i + 1 : i + 12] if line][:8]:
        field = HEADER_FIELD.match(line)
        if field:
            fields.add(field.group(1).lower())
    return bool(fields & FROM_FIELDS) and len(fields - FROM_FIELDS) >= 2


def first_text(plain: list[str], start: int) -> int | None:
    return next((n for n in range(start, len(plain)) if plain[n]), None)


def has_reply_below(plain: list[str], start: int) -> bool:
    """Whether unquoted text follows (an interleaved or bottom-posted reply), signature aside."""
    for n in range(start, len(plain)):
        line = plain[n]
        if line in SIGNATURE or FORWARD.match(line):
            return False
        if line and not QUOTED.match(line) and not SEPARATOR.match(line):
            if not MOBILE_FOOTER.match(line) and not attribution_at([line], 0):
                return True
    return False


def cut_signature(lines: list[str]) -> list[str]:
    for n, line in enumerate(lines):
        if line in SIGNATURE:
            return lines[:n]
    return lines


def drop_footers(lines: list[str]) -> list[str]:
    """Remove trailing empty lines, separators and mobile footers ("Sent from my iPhone")."""
    lines = list(lines)
    while lines:
        last = lines[-1].replace("\xa0", " ").strip()
        if last and not SEPARATOR.match(last) and not MOBILE_FOOTER.match(last):
            break
        lines.pop()
    return lines


def tidy(lines: list[str]) -> str:
    """At most one empty line in a row, none at the start or end."""
    out: list[str] = []
    for line in lines:
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)
