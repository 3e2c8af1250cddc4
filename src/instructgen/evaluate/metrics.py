"""Reference-based text metrics for Chinese and English: BLEU, chrF, ROUGE, METEOR, EM, F1.

Every score is on a 0–100 scale (sacrebleu's convention, applied to all metrics alike).
Corpus-level functions take `predictions` (one string each) and `references` (one string,
or a list of strings, per prediction) and return a dict that `compute` merges.
`lang="auto"` picks Chinese when CJK characters are at least 20% of the letters.

Example: compute(["bleu", "rouge"], ["the cat sat"], ["the cat sat down"], lang="en").
"""

from __future__ import annotations

import io
import logging
import os
import re
import string
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import sacrebleu
from rouge_score import rouge_scorer, tokenizers

from instructgen.errors import ConfigError, DataError, UserError
from instructgen.jsonl import read_json_lines
from instructgen.text import CJK_CLASS, char_words, jieba_words, resolve_lang

References = Sequence[str] | Sequence[Sequence[str]]
METRICS = ("bleu", "rouge", "meteor", "em", "f1", "chrf", "accuracy")
ZH_TOKENIZERS = {"jieba": jieba_words, "char": char_words}

log = logging.getLogger("instructgen.evaluate")


def _ref_lists(predictions: Sequence[str], references: References) -> list[list[str]]:
    """Check the counts and turn each reference into a non-empty list of strings."""
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise UserError("no predictions to score")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    for i, r in enumerate(refs):
        if not r or not all(isinstance(x, str) for x in r):
            raise UserError(f"reference {i + 1} must be a string or a non-empty list of strings")
    return refs


def _lang(lang: str, predictions: Sequence[str], refs: list[list[str]]) -> str:
    return resolve_lang(lang, [*predictions, *(x for r in refs for x in r)])


def _zh_tokenizer(name: str) -> Callable[[str], list[str]]:
    if name not in ZH_TOKENIZERS:
        raise ConfigError(
            f"unknown zh_tokenizer {name!r}; expected jieba or char", field="zh_tokenizer"
        )
    return ZH_TOKENIZERS[name]


# ---------------------------------------------------------------- BLEU, chrF (sacrebleu)


def _bleu_tokenize(lang: str) -> str:
    return "zh" if lang == "zh" else "13a"


def bleu(
    predictions: Sequence[str], references: References, *, lang: str = "auto"
) -> dict[str, Any]:
    """Corpus BLEU = BP · exp(Σ_{n=1..4} ¼ · log p_n), BP = min(1, exp(1 − r/c)), via sacrebleu.

    Tokenizer "zh" for Chinese, "13a" otherwise; references may differ in number per prediction."""
    refs = _ref_lists(predictions, references)
    tok = _bleu_tokenize(_lang(lang, predictions, refs))
    metric = sacrebleu.BLEU(tokenize=tok)
    result = metric.corpus_score(list(predictions), _ref_streams(refs))
    return {
        "bleu": result.score,
        "bleu_precisions": list(result.precisions),
        "bleu_bp": result.bp,
        "bleu_tokenize": tok,
        "bleu_signature": str(metric.get_signature()),
    }


def sentence_bleu(prediction: str, references: str | Sequence[str], *, lang: str = "auto") -> float:
    """Smoothed sentence BLEU (sacrebleu.sentence_bleu: exp smoothing, effective order), 0–100."""
    refs = [references] if isinstance(references, str) else list(references)
    tok = _bleu_tokenize(resolve_lang(lang, [prediction, *refs]))
    return float(sacrebleu.sentence_bleu(prediction, refs, tokenize=tok).score)


def chrf(
    predictions: Sequence[str], references: References, *, word_order: int = 0
) -> dict[str, Any]:
    """Corpus chrF_β = (1 + β²) · chrP · chrR / (β² · chrP + chrR), β = 2, character 1–6-grams (sacrebleu).

    word_order=2 gives chrF++. Needs no word segmentation, so it treats zh and en alike."""
    refs = _ref_lists(predictions, references)
    metric = sacrebleu.CHRF(word_order=word_order)
    result = metric.corpus_score(list(predictions), _ref_streams(refs))
    return {"chrf": result.score, "chrf_signature": str(metric.get_signature())}


def _ref_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """Transpose per-prediction references into sacrebleu's streams; None pads a missing one."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


# ---------------------------------------------------------------- ROUGE (rouge-score)


class _WordTokenizer(tokenizers.Tokenizer):
    """rouge-score tokenizer over a word segmenter; lowercases like rouge-score's default."""

    def __init__(self, words: Callable[[str], list[str]]):
        self._words = words

    def tokenize(self, text: str) -> list[str]:
        return self._words(text.lower())


def rouge(
    predictions: Sequence[str],
    references: References,
    *,
    lang: str = "auto",
    zh_tokenizer: str = "jieba",
    use_stemmer: bool = False,
) -> dict[str, Any]:
    """Mean over the corpus of ROUGE-N F = 2PR/(P+R) (N = 1, 2) and ROUGE-L F (longest common
    subsequence), best reference per prediction, via rouge-score.

    English uses rouge-score's default tokenizer (lowercase, [a-z0-9] runs), which would drop
    every Chinese character; Chinese uses jieba words or single characters (`zh_tokenizer`)."""
    refs = _ref_lists(predictions, references)
    types = ["rouge1", "rouge2", "rougeL"]
    if _lang(lang, predictions, refs) == "zh":
        scorer = rouge_scorer.RougeScorer(
            types, tokenizer=_WordTokenizer(_zh_tokenizer(zh_tokenizer))
        )
        tokenizer_name = zh_tokenizer
    else:
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=use_stemmer)
        tokenizer_name = "default+stem" if use_stemmer else "default"
    totals = dict.fromkeys(types, 0.0)
    for pred, ref in zip(predictions, refs):
        scores = scorer.score_multi(ref, pred)
        for t in types:
            totals[t] += scores[t].fmeasure
    out: dict[str, Any] = {t: 100.0 * totals[t] / len(predictions) for t in types}
    out["rouge_tokenizer"] = tokenizer_name
    return out


# ---------------------------------------------------------------- METEOR (nltk)

# WordNet 3.0's lexicographer files (the `lexnames` file that Debian's wordnet-base omits):
# index = position, syntactic category 1 noun, 2 verb, 3 adj, 4 adv.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_WORDNET_FILES = [
    f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")
]
SYSTEM_WORDNET_DIRS = ("/usr/share/wordnet",)  # Debian/Ubuntu package `wordnet-base`


class _NoWordNet:
    """Stands in for WordNet when no data is installed: no synonyms, so METEOR = exact + stem."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


def _system_wordnet(root: str) -> Any:
    """nltk reader over a bare WordNet 3.0 dict directory such as Debian's /usr/share/wordnet."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    lexnames = "".join(
        f"{i:02d}\t{n}\t{_CATEGORY[n.split('.')[0]]}\n" for i, n in enumerate(_LEXNAMES)
    )

    class DictDirReader(WordNetCorpusReader):
        def open(self, fileid):  # the one file the Debian package leaves out
            return io.StringIO(lexnames) if fileid == "lexnames" else super().open(fileid)

        def map_wn(self, version="wordnet"):  # already WordNet 3.0: no mapping (used by OMW only)
            return None

    # nltk (>= 3.9) only reads files under its data roots.
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return DictDirReader(root, None)


@lru_cache(maxsize=1)
def find_wordnet() -> tuple[Any, str]:
    """(reader, where): nltk's own wordnet data first, then a WordNet 3.0 dict directory
    ($WNSEARCHDIR or /usr/share/wordnet); (None, "none") without either."""
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet, "nltk_data"
    except (LookupError, OSError):
        pass
    dirs = [os.environ["WNSEARCHDIR"]] if os.environ.get("WNSEARCHDIR") else []
    for root in [*dirs, *SYSTEM_WORDNET_DIRS]:
        if all(Path(root, f).is_file() for f in _WORDNET_FILES):
            try:
                return _system_wordnet(root), root
            except (OSError, ValueError, AssertionError, PermissionError):
                continue
    return None, "none"


@lru_cache(maxsize=1)
def _warn_no_wordnet() -> None:
    log.warning(
        "METEOR: WordNet data not found, so synonym matching is OFF (exact + stem only; scores "
        "run lower than nltk's with WordNet, and `meteor_matching` says so). Turn it on with "
        "`sudo apt install wordnet-base` or `python -m nltk.downloader wordnet`."
    )


_EN_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def meteor(
    predictions: Sequence[str],
    references: References,
    *,
    lang: str = "auto",
    use_wordnet: bool | None = None,
    zh_tokenizer: str = "jieba",
) -> dict[str, Any]:
    """Mean over the corpus of METEOR = F_mean · (1 − γ · (chunks/matches)^β),
    F_mean = P·R / (α·P + (1 − α)·R), α = 0.9, β = 3, γ = 0.5 (nltk.translate.meteor_score).

    Words are matched exactly, then by Porter stem, then as WordNet synonyms when WordNet data is
    present (use_wordnet=None: when found; False: never). English words are letter/digit runs,
    Chinese words come from jieba (or single characters); punctuation is dropped."""
    from nltk.translate.meteor_score import meteor_score

    refs = _ref_lists(predictions, references)
    words = (
        _zh_tokenizer(zh_tokenizer)
        if _lang(lang, predictions, refs) == "zh"
        else _EN_WORD_RE.findall
    )
    reader, where = find_wordnet() if use_wordnet is not False else (None, "none")
    if use_wordnet and reader is None:
        raise ConfigError(
            "WordNet data not found (install nltk's wordnet data or the Debian package wordnet-base)",
            field="use_wordnet",
        )
    if reader is None and use_wordnet is None:
        _warn_no_wordnet()
    wordnet = reader if reader is not None else _NoWordNet()
    total = sum(
        meteor_score([words(r) for r in ref], words(pred), wordnet=wordnet)
        for pred, ref in zip(predictions, refs)
    )
    return {
        "meteor": 100.0 * total / len(predictions),
        "meteor_matching": "exact+stem+wordnet" if reader is not None else "exact+stem",
        "meteor_wordnet": where,
    }


# ---------------------------------------------------------------- EM, F1, accuracy

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_F1_TOKEN_RE = re.compile(f"[{CJK_CLASS}]|[^\\s{CJK_CLASS}]+")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
# how answers are compared: "squad" as the official SQuAD v1.1 script does (ASCII punctuation
# removed, whitespace tokens, F1 0 when either side is empty); "squad2" as v2's (the same, but an
# empty answer to an unanswerable question is a match); "unicode" for any script (Unicode
# punctuation removed, each CJK character a token, empty matches empty); "auto": unicode for zh
NORMALIZATIONS = ("auto", "squad", "squad2", "unicode")


def normalize_answer(text: str, normalization: str = "squad") -> str:
    """SQuAD normalisation: lowercase, drop punctuation (ASCII, or every Unicode P* character
    for "unicode"), drop a/an/the, squeeze spaces."""
    text = text.lower()
    if normalization == "unicode":
        text = "".join(
            ch
            for ch in text
            if ch not in _ASCII_PUNCTUATION and not unicodedata.category(ch).startswith("P")
        )
    else:
        text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def _normalization(normalization: str, lang: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"unknown normalization {normalization!r}; choose {', '.join(NORMALIZATIONS)}",
            field="normalization",
        )
    if normalization == "auto":
        return "unicode" if lang == "zh" else "squad"
    return normalization


def _f1_tokens(text: str, normalization: str) -> list[str]:
    """Normalised tokens: split on whitespace ("unicode": every CJK character alone too)."""
    normalized = normalize_answer(text, normalization)
    return _F1_TOKEN_RE.findall(normalized) if normalization == "unicode" else normalized.split()


def token_f1(prediction: str, reference: str, normalization: str = "squad") -> float:
    """F1 = 2·P·R/(P+R) over the multiset of shared tokens (SQuAD), in [0, 1]."""
    pred, ref = _f1_tokens(prediction, normalization), _f1_tokens(reference, normalization)
    if not pred or not ref:
        return float(pred == ref and normalization != "squad")
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(
    predictions: Sequence[str],
    references: References,
    *,
    normalization: str = "auto",
    lang: str = "auto",
) -> dict[str, Any]:
    """EM = 100 · mean_i max_r [normalize(pred_i) == normalize(r)]."""
    refs = _ref_lists(predictions, references)
    rule = _normalization(normalization, _lang(lang, predictions, refs))
    hits = sum(
        any(normalize_answer(p, rule) == normalize_answer(r, rule) for r in ref)
        for p, ref in zip(predictions, refs)
    )
    return {"em": 100.0 * hits / len(predictions), "em_normalization": rule}


def f1(
    predictions: Sequence[str],
    references: References,
    *,
    normalization: str = "auto",
    lang: str = "auto",
) -> dict[str, Any]:
    """F1 = 100 · mean_i max_r token_f1(pred_i, r) (SQuAD; "unicode": Chinese per character)."""
    refs = _ref_lists(predictions, references)
    rule = _normalization(normalization, _lang(lang, predictions, refs))
    total = sum(max(token_f1(p, r, rule) for r in ref) for p, ref in zip(predictions, refs))
    return {"f1": 100.0 * total / len(predictions), "f1_normalization": rule}


def accuracy(
    predictions: Sequence[str] | Sequence[bool], references: References | None = None
) -> dict[str, float]:
    """Accuracy = 100 · #correct / n: `predictions` are booleans (references=None), or strings
    that count as correct when equal to a reference after stripping surrounding whitespace."""
    if references is None:
        if not predictions or not all(isinstance(p, bool) for p in predictions):
            raise UserError("accuracy without references needs a non-empty list of booleans")
        return {"accuracy": 100.0 * sum(predictions) / len(predictions)}
    refs = _ref_lists(predictions, references)
    hits = sum(any(str(p).strip() == r.strip() for r in ref) for p, ref in zip(predictions, refs))
    return {"accuracy": 100.0 * hits / len(predictions)}


# ---------------------------------------------------------------- dispatch and files


def compute(
    metrics: Sequence[str],
    predictions: Sequence[str],
    references: References,
    *,
    lang: str = "auto",
    normalization: str = "auto",
) -> dict[str, Any]:
    """Run each named metric (bleu, rouge, meteor, em, f1, chrf, accuracy) and merge their dicts;
    `normalization` is how em and f1 compare answers (NORMALIZATIONS)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ConfigError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}",
            field="metrics",
        )
    refs = _ref_lists(predictions, references)
    lang = _lang(lang, predictions, refs)
    calls: dict[str, Callable[[], dict[str, Any]]] = {
        "bleu": lambda: bleu(predictions, refs, lang=lang),
        "rouge": lambda: rouge(predictions, refs, lang=lang),
        "meteor": lambda: meteor(predictions, refs, lang=lang),
        "em": lambda: exact_match(predictions, refs, normalization=normalization, lang=lang),
        "f1": lambda: f1(predictions, refs, normalization=normalization, lang=lang),
        "chrf": lambda: chrf(predictions, refs),
        "accuracy": lambda: accuracy(predictions, refs),
    }
    out: dict[str, Any] = {"n": len(predictions), "lang": lang}
    for name in dict.fromkeys(metrics):
        out.update(calls[name]())
    return out


def read_lines(path: str | Path) -> list[str]:
    """One text per line; for a `.jsonl` file, one JSON object per non-blank line with a string `text`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError("not valid UTF-8", file=str(path), line=line) from None
    text = text.removeprefix("\ufeff")
    if path.suffix.lower() != ".jsonl":
        if not (lines := text.splitlines()):
            raise DataError("file is empty", file=str(path))
        return lines
    out = []
    for i, record in read_json_lines(text, file=str(path)):
        if not isinstance(record, dict) or "text" not in record:
            raise DataError("missing", file=str(path), line=i, field="text")
        if not isinstance(record["text"], str):
            raise DataError(
                f"must be a string, got {type(record['text']).__name__}",
                file=str(path),
                line=i,
                field="text",
            )
        out.append(record["text"])
    if not out:
        raise DataError("file has no records", file=str(path))
    return out
