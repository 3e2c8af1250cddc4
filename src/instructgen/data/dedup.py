"""Overlap metrics and duplicate filters for instruction data, Chinese- and English-aware.

Used by Self-Instruct (data/selfinstruct.py) to reject instructions too similar to kept ones, and by
`instructgen data stats` to report exact and near duplicate rates.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from functools import lru_cache

from instructgen.text import CJK_CLASS, KANA

# CJK ideographs (basic, extension A, compatibility) and Japanese kana: one token per character.
_CJK = KANA + CJK_CLASS
_CJK_RE = re.compile(f"[{_CJK}]")
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")

BLACKLIST: tuple[str, ...] = (
    # Wang et al. 2022: tasks a text-only model cannot do.
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
    # Chinese equivalents.
    "图片", "图像", "图表", "视频", "音频", "音乐", "文件", "地图", "画",
)  # fmt: skip


def overlap_tokens(text: str) -> list[str]:
    """Tokens for overlap metrics: lowercase Latin words and digit runs, and each CJK character as
    one token (Chinese has no spaces; character tokens are the usual choice for zh ROUGE).
    Punctuation and whitespace are dropped."""
    return _TOKEN_RE.findall(text.lower())


class _OverlapTokenizer:
    """The tokenizer object rouge-score expects: anything with `.tokenize(text) -> list[str]`."""

    def tokenize(self, text: str) -> list[str]:
        return overlap_tokens(text)


@lru_cache(maxsize=1)
def _rouge_l_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_OverlapTokenizer())


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure: F = 2·P·R / (P + R), P = LCS/|b|, R = LCS/|a| over overlap_tokens."""
    return _rouge_l_scorer().score(a, b)["rougeL"].fmeasure


class RougeLIndex:
    """Kept texts, queried for the highest ROUGE-L against a new text.

    A cheap upper bound skips most exact LCS computations: LCS ≤ |bag(a) ∩ bag(b)|, so
    F ≤ 2·|bag(a) ∩ bag(b)| / (|a| + |b|)."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._items: list[tuple[str, Counter[str], int]] = []
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, text: str) -> None:
        tokens = overlap_tokens(text)
        self._items.append((text, Counter(tokens), len(tokens)))

    def best(self, text: str, *, at_least: float = 0.0) -> tuple[float, str | None]:
        """Highest ROUGE-L of `text` against the kept texts whose bound reaches `at_least`."""
        tokens = overlap_tokens(text)
        bag, n = Counter(tokens), len(tokens)
        best_score, best_text = 0.0, None
        for other, other_bag, other_n in self._items:
            if n + other_n == 0:
                continue
            bound = 2 * sum((bag & other_bag).values()) / (n + other_n)
            if bound < max(at_least, best_score) or bound == 0:
                continue
            score = rouge_l(other, text)
            if score > best_score:
                best_score, best_text = score, other
        return best_score, best_text


def normalise(text: str) -> str:
    """The form two texts must share to count as exact duplicates: NFKC, lowercase, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def char_shingles(text: str, n: int = 3) -> set[str]:
    """Character n-grams of the normalised text (short n suits Chinese, where a word is 1-3 chars)."""
    text = normalise(text)
    if len(text) <= n:
        return {text}
    return {text[i : i + n] for i in range(len(text) - n + 1)}


class NearDuplicateIndex:
    """MinHash LSH over character n-gram shingles: finds texts whose Jaccard similarity
    J(A, B) = |A ∩ B| / |A ∪ B| is estimated at or above `threshold`."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, seed: int = 1, ngram: int = 3):
        from datasketch import MinHashLSH

        self.threshold, self.num_perm, self.seed, self.ngram = threshold, num_perm, seed, ngram
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: dict[Hashable, object] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def _minhash(self, text: str):
        from datasketch import MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch(s.encode("utf-8") for s in sorted(char_shingles(text, self.ngram)))
        return m

    def _matches(self, m) -> list[Hashable]:
        # LSH gives candidates; keep those whose estimated Jaccard really reaches the threshold.
        return [k for k in self._lsh.query(m) if self._hashes[k].jaccard(m) >= self.threshold]

    def query(self, text: str) -> list[Hashable]:
        """Keys of indexed texts that are near duplicates of `text`."""
        return self._matches(self._minhash(text))

    def add(self, key: Hashable, text: str) -> bool:
        """Index `text` under `key` and return True, unless a near duplicate is already in (False)."""
        if key in self._hashes:
            raise ValueError(f"key {key!r} is already in the index")
        m = self._minhash(text)
        if self._matches(m):
            return False
        self._lsh.insert(key, m)
        self._hashes[key] = m
        return True


def duplicate_rate(texts: Iterable[str], *, near: bool = True) -> dict:
    """Fractions of records duplicating an earlier one: {"exact": dups / n, "near": near_dups / n}.

    Exact means equal after normalise(); near means MinHash-estimated Jaccard ≥ 0.7 of character
    3-gram shingles (exact duplicates count as near too). "near" is None when near=False."""
    seen: set[str] = set()
    index = NearDuplicateIndex() if near else None
    n = exact = near_dups = 0
    for text in texts:
        key = normalise(text)
        exact += key in seen
        seen.add(key)
        if index is not None and not index.add(n, text):
            near_dups += 1
        n += 1
    if n == 0:
        return {"exact": 0.0, "near": 0.0 if near else None}
    return {"exact": exact / n, "near": near_dups / n if near else None}


# --- Self-Instruct's heuristic filters (Wang et al. 2022, §2.3), made Chinese-aware --------------


def word_count(text: str) -> int:
    """Words for length filters: Latin words and digit runs, plus one per CJK character."""
    return len(overlap_tokens(text))


def too_short(text: str, min_words: int = 4) -> bool:
    """Fewer than `min_words` words (the paper drops instructions of 3 words or fewer)."""
    return word_count(text) < min_words


def too_long(text: str, max_words: int = 150) -> bool:
    """More than `max_words` words (the paper's limit is 150)."""
    return word_count(text) > max_words


def has_blacklisted(text: str, words: Sequence[str] = BLACKLIST) -> bool:
    """True if `text` names something a text-only model cannot handle (image, file, 图片...).
    Latin words must match whole words; CJK words match anywhere (Chinese has no spaces)."""
    lowered = text.lower()
    for word in words:
        if _CJK_RE.search(word):
            if word in lowered:
                return True
        elif re.search(rf"\b{re.escape(word.lower())}\b", lowered):
            return True
    return False


_OPENERS = "\"'"  # quotes may open a title, like 《 or “ (Unicode categories Ps and Pi)


def starts_with_punctuation(text: str) -> bool:
    """True if the first visible character is punctuation or a symbol, as in list debris such as
    "- foo" or ") foo". Opening quotes and brackets (“Hamlet”, 《红楼梦》, (a)) are allowed, and a
    non-ASCII first character is no reason: Chinese instructions start with one."""
    text = text.lstrip()
    if not text:
        return False
    first = text[0]
    category = unicodedata.category(first)
    if first in _OPENERS or category in ("Ps", "Pi"):
        return False
    return category[0] in ("P", "S")
