"""A knowledge base for the support bot: FAQ entries from JSONL, CSV or Markdown, retrieved with
BM25 (bm25s) over Chinese-aware terms (apps.common.tokenize).

    kb = KnowledgeBase.load("faq.md")
    kb.search("How long is the warranty?", k=3)   # → [Hit(entry, score), ...], best first
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from instructgen.apps.common import read_records, tokenize
from instructgen.errors import DataError

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_ID_SUFFIX = re.compile(r"\s*\{#([\w.-]+)\}$")


@dataclass(frozen=True)
class Entry:
    id: str
    question: str
    answer: str

    def cite(self) -> str:
        return f"[kb:{self.id}]"


@dataclass(frozen=True)
class Hit:
    """A retrieved entry; score is its BM25 score over IDF₁ (see KnowledgeBase.search)."""

    entry: Entry
    score: float


class KnowledgeBase:
    """Entries indexed with BM25: score(q, d) = Σ_t IDF(t)·tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))."""

    def __init__(self, entries: list[Entry]):
        if not entries:
            raise DataError("the knowledge base has no entries")
        ids = [e.id for e in entries]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise DataError(f"duplicate entry ids: {', '.join(dupes)}", field="id")
        import bm25s

        self.entries = list(entries)
        self._by_id = {e.id: e for e in entries}
        self._index = bm25s.BM25()
        docs = [tokenize(f"{e.question}\n{e.answer}") or ["\0"] for e in entries]
        self._index.index(docs, show_progress=False)

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeBase:
        """JSONL/CSV rows with question and answer (id optional), or Markdown (a heading per question)."""
        path = Path(path)
        if path.suffix.lower() in (".md", ".markdown"):
            return cls(_markdown_entries(path))
        entries = []
        for line, row in read_records(path, what="knowledge-base"):
            for key in ("question", "answer"):
                if not str(row.get(key) or "").strip():
                    raise DataError("missing or empty", file=str(path), line=line, field=key)
            entry_id = str(row.get("id") or "").strip() or str(len(entries) + 1)
            entries.append(
                Entry(entry_id, str(row["question"]).strip(), str(row["answer"]).strip())
            )
        return cls(entries)

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def search(self, query: str, k: int = 3, min_score: float = 0.0) -> list[Hit]:
        """The k best entries with score > min_score, best first (ties by KB order).

        score = BM25 / IDF₁ with IDF₁ = ln(1 + (N − 0.5) / 1.5), the IDF of a term found in one
        of the N entries: about the number of distinctive query terms an entry matches, so one
        threshold suits a knowledge base of 3 entries or of 3,000.
        """
        terms = tokenize(query)
        if not terms:
            return []
        k = min(k, len(self.entries))
        idf_1 = math.log(1 + (len(self.entries) - 0.5) / 1.5)
        docs, scores = self._index.retrieve([terms], k=k, show_progress=False)
        hits = [
            Hit(self.entries[int(d)], float(s) / idf_1)
            for d, s in zip(docs[0], scores[0])
            if float(s) / idf_1 > min_score
        ]
        return sorted(hits, key=lambda h: (-h.score, self.entries.index(h.entry)))


def _markdown_entries(path: Path) -> list[Entry]:
    """Each heading is a question (`## Returns {#returns}` sets the id); the text below, its answer."""
    if not path.is_file():
        raise DataError("knowledge-base file not found", file=str(path))
    entries: list[Entry] = []
    current: tuple[str, str, int] | None = None
    body: list[str] = []

    def flush() -> None:
        if current is None:
            return
        entry_id, question, line = current
        answer = "\n".join(body).strip()
        if not answer:
            raise DataError("heading has no answer text below it", file=str(path), line=line)
        entries.append(Entry(entry_id, question, answer))

    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        m = _HEADING.match(line)
        if m:
            flush()
            title = m.group(2)
            id_match = _ID_SUFFIX.search(title)
            entry_id = id_match.group(1) if id_match else str(len(entries) + 1)
            current, body = (entry_id, _ID_SUFFIX.sub("", title), line_no), []
        elif current is not None:
            body.append(line)
    flush()
    if not entries:
        raise DataError("no '#' headings found (one heading per question)", file=str(path))
    return entries
