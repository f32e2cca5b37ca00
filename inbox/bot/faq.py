"""FAQ matching, scored 0-100 so one threshold decides whether the bot answers.

Three signals, the strongest counts: fuzzy similarity to the question and its paraphrases
(rapidfuzz); word coverage, where each word of the message is matched fuzzily (typos, Dutch
compounds and diminutives by their stem) against the words of an entry, weighted by how rare the
word is in the knowledge base, and words the knowledge base does not know at all dilute the
score; and keyword rules, which put an entry over the default threshold on their own.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.normalizers import fold
from inbox.bot.models import BotFaq

KEYWORD_SCORE = 90.0  # a keyword rule alone clears the default threshold
SAME_LANGUAGE_BONUS = 2.0  # breaks near-ties in favour of the conversation's language
CACHE_S = 10.0
WORD_CUTOFF = 80.0  # rapidfuzz ratio from which two words count as the same word
STEM = 5  # a shared prefix this long (and most of the shorter word) counts as the same word
UNKNOWN_WEIGHT = 0.35  # how much a word the knowledge base never uses weighs against a match
# Words that say nothing about the topic; dropping them keeps short questions from matching
# on "hoe"/"what" alone.
STOPWORDS = frozenset(
    """
    de het een en of ik je jij u uw we wij jullie ze zij hij mijn onze is zijn ben bent was
    waren wordt worden kan kun kunt kunnen mag mogen wil wilt willen graag even nog al ook er
    dat dit die deze daar hier van voor met op in aan bij naar om over te tot uit als dan
    niet geen wel hallo hoi hey hi goedemorgen goedemiddag dag beste bedankt dank alvast
    vraag vraagje wanneer hoe waar wat welke welk wie waarom moet moeten heb hebt heeft
    hebben had vind weet zoek zou zouden
    a an the and or i you we they he she it my our your is are am was were be been do does
    did can could may might would will shall should please hello thanks thank there this
    that these those of for with on in at to from about by me us how what where when which
    who why get have has had like would want need find know
    """.split()
)


def words(text: str) -> list[str]:
    return [w for w in fold(text).split() if w not in STOPWORDS]


def prepared(text: str) -> str:
    """What the fuzzy scorer compares: folded, without stop words (all words if only those)."""
    kept = words(text)
    return " ".join(kept) if kept else fold(text)


def similarity(query: str, phrase: str) -> float:
    """0-100: word-order-insensitive similarity, penalising a query much shorter than the phrase."""
    if not query or not phrase:
        return 0.0
    sort = fuzz.token_sort_ratio(query, phrase)
    best_part = fuzz.token_set_ratio(query, phrase)
    # token_set_ratio is 100 for any subset ("prijs" in "prijs van een dakkapel"), so it only
    # counts in part; a near-identical word order counts fully.
    return max(sort, 0.6 * best_part + 0.4 * sort, fuzz.ratio(query, phrase))


@dataclass(frozen=True)
class Entry:
    faq_id: int
    key: str
    language: str
    question: str
    answer: str
    buttons: tuple[tuple[str, str], ...]
    phrases: tuple[str, ...]  # prepared question and paraphrases
    keywords: tuple[str, ...]  # folded
    in_menu: bool = True


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    via: str  # fuzzy or keyword


SUFFIXES = ("tjes", "tje", "jes", "je", "ing", "en", "es", "s", "d", "t", "e")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem: no Dutch past-participle "ge-", no diminutive or plural ending."""
    if word.startswith("ge") and len(word) > 6:
        word = word[2:]
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@lru_cache(maxsize=65536)
def same_word(a: str, b: str) -> float:
    """0-1: whether two words are the same word, allowing typos and Dutch inflection."""
    if a == b:
        return 1.0
    for x, y in ((a, b), (stem(a), stem(b))):
        short, long = sorted((x, y), key=len)
        if len(short) >= STEM - 1 and long.startswith(short):
            return 0.9
        shared = shared_prefix(x, y)
        if shared >= STEM + 1 and shared >= 0.75 * len(short):
            return 0.9
    ratio = fuzz.ratio(a, b)
    return ratio / 100 if ratio >= WORD_CUTOFF else 0.0


def has_keyword(folded: str, keyword: str) -> bool:
    """A keyword phrase as written, or a one-word keyword in another form ("pakketje")."""
    if re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", folded) is not None:
        return True
    return " " not in keyword and any(same_word(w, keyword) >= 0.9 for w in folded.split())


@dataclass
class Matcher:
    """The knowledge base of one channel, ready to match."""

    entries: list[Entry] = field(default_factory=list)
    vocabulary: list[str] = field(init=False, default_factory=list)
    owners: list[frozenset[int]] = field(init=False, default_factory=list)  # entries per word
    idf: list[float] = field(init=False, default_factory=list)
    roots: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        by_word: dict[str, set[int]] = {}
        for index, entry in enumerate(self.entries):
            for phrase in (*entry.phrases, *entry.keywords):
                for word in phrase.split():
                    if word not in STOPWORDS:
                        by_word.setdefault(word, set()).add(index)
        topics = len({e.key for e in self.entries}) or 1
        self.vocabulary = list(by_word)
        self.roots = [stem(w)[: STEM - 1] for w in self.vocabulary]
        self.owners = [frozenset(by_word[w]) for w in self.vocabulary]
        self.idf = [
            math.log(1 + topics / len({self.entries[i].key for i in owners}))
            for owners in self.owners
        ]

    def coverage(self, query: str) -> dict[int, float]:
        """0-100 per entry: how much of the query's weight the entry's words account for."""
        words = [w for w in query.split() if w not in STOPWORDS]
        if not words or not self.vocabulary:
            return {}
        total = 0.0
        got: dict[int, float] = {}
        unknown = UNKNOWN_WEIGHT * (sum(self.idf) / len(self.idf))
        for word in words:
            close = {
                index: score / 100
                for _, score, index in process.extract(
                    word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=WORD_CUTOFF, limit=None
                )
            }
            root = stem(word)
            if len(root) >= STEM - 1:
                for index, known in enumerate(self.roots):
                    if index not in close and known == root[: STEM - 1]:
                        close[index] = same_word(word, self.vocabulary[index])
            weights: dict[int, float] = {}
            for index, sim in close.items():
                if sim <= 0:
                    continue
                value = sim * self.idf[index]
                for owner in self.owners[index]:
                    weights[owner] = max(weights.get(owner, 0.0), value)
            total += max(weights.values()) if weights else unknown
            for owner, value in weights.items():
                got[owner] = got.get(owner, 0.0) + value
        return {owner: 100 * value / total for owner, value in got.items()}

    def best(self, text: str, language: str | None = None) -> Hit | None:
        """The best answer for the text, whatever its score (the caller applies the threshold)."""
        query = prepared(text)
        folded = fold(text)
        if not query:
            return None
        covered = self.coverage(query)
        best: Hit | None = None
        best_rank = -1.0
        for index, entry in enumerate(self.entries):
            score = max((similarity(query, p) for p in entry.phrases), default=0.0)
            score = max(score, covered.get(index, 0.0))
            via = "fuzzy"
            if any(has_keyword(folded, k) for k in entry.keywords) and score < KEYWORD_SCORE:
                # Among several keyword hits the fuzzy score still orders them.
                score, via = KEYWORD_SCORE + score / 100, "keyword"
            rank = score + (SAME_LANGUAGE_BONUS if entry.language == language else 0.0)
            if rank > best_rank:
                best, best_rank = Hit(entry, min(score, 100.0), via), rank
        return best

    def by_key(self, key: str, language: str | None) -> Entry | None:
        found = [e for e in self.entries if e.key == key]
        return next((e for e in found if e.language == language), found[0] if found else None)

    def menu(self, language: str, limit: int = 6) -> list[Entry]:
        """The topics to offer as buttons, in the conversation's language when there are any."""
        mine = [e for e in self.entries if e.in_menu and e.language == language]
        return (mine or [e for e in self.entries if e.in_menu])[:limit]


def entry_of(row: BotFaq) -> Entry:
    buttons = tuple(
        (str(b.get("label", ""))[:64], str(b.get("data", ""))[:500])
        for b in row.buttons or ()
        if b.get("label") and b.get("data")
    )
    phrases = tuple(dict.fromkeys(prepared(p) for p in (row.question, *row.paraphrases) if p))
    return Entry(
        faq_id=row.id,
        key=row.key,
        language=row.language,
        question=row.question,
        answer=row.answer,
        buttons=buttons,
        phrases=phrases,
        keywords=tuple(k for k in (fold(k) for k in row.keywords) if k),
        in_menu=row.in_menu,
    )


def matcher_of(rows: Iterable[BotFaq]) -> Matcher:
    return Matcher([entry_of(r) for r in rows])


_cache: dict[str | None, tuple[float, Matcher]] = {}


def forget() -> None:
    """Drop cached knowledge bases (after an edit through the admin API)."""
    _cache.clear()


async def load(session: AsyncSession, channel_id: str | None, cached: bool = True) -> Matcher:
    """The active questions for a channel: its own plus those for every channel."""
    hit = _cache.get(channel_id)
    if cached and hit is not None and hit[0] > time.monotonic():
        return hit[1]
    rows = (
        await session.scalars(
            select(BotFaq)
            .where(
                BotFaq.is_active,
                or_(BotFaq.channel_id.is_(None), BotFaq.channel_id == channel_id),
            )
            .order_by(BotFaq.position, BotFaq.id)
        )
    ).all()
    matcher = matcher_of(rows)
    _cache[channel_id] = (time.monotonic() + CACHE_S, matcher)
    return matcher


def accuracy(
    matcher: Matcher, cases: Sequence[tuple[str, str | None, str]], threshold: float
) -> tuple[float, list[tuple[str, str | None, str | None, float]]]:
    """Share of (text, expected key or None for "no answer", language) cases matched right,
    and the misses as (text, expected, got, score)."""
    misses: list[tuple[str, str | None, str | None, float]] = []
    for text, expected, language in cases:
        hit = matcher.best(text, language)
        got = hit.entry.key if hit is not None and hit.score >= threshold else None
        if got != expected:
            misses.append((text, expected, got, hit.score if hit else 0.0))
    return (1 - len(misses) / len(cases) if cases else 1.0), misses
