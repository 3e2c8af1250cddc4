"""Reference metrics: equal to sacrebleu / rouge-score / nltk on the same inputs, bilingual."""

from __future__ import annotations

import json
import os

import pytest
import sacrebleu
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

from instructgen.errors import ConfigError, DataError, UserError
from instructgen.evaluate import metrics
from instructgen.evaluate.text import detect_lang

EN_PRED = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog", "Hello world"]
EN_REF = [
    "The cat is sitting on the mat.",
    "The quick brown fox jumped over the lazy dog.",
    "Hello, world!",
]
ZH_PRED = ["我爱北京天安门。", "今天天气很好，我们去公园散步吧。"]
ZH_REF = ["我爱北京的天安门。", "今天的天气非常好，我们一起去公园散步。"]


def test_detect_lang():
    assert detect_lang("今天天气很好") == "zh"
    assert detect_lang("使用Python编程很有趣") == "zh"
    assert detect_lang("The word 你好 means hello in Chinese") == "en"
    assert detect_lang(EN_PRED) == "en"


@pytest.mark.parametrize(
    ("pred", "ref", "tok"), [(EN_PRED, EN_REF, "13a"), (ZH_PRED, ZH_REF, "zh")]
)
def test_bleu_equals_sacrebleu(pred, ref, tok):
    out = metrics.bleu(pred, ref)
    expected = sacrebleu.corpus_bleu(pred, [ref], tokenize=tok)
    assert out["bleu"] == pytest.approx(expected.score)
    assert out["bleu_tokenize"] == tok
    assert f"tok:{tok}" in out["bleu_signature"]


def test_bleu_multiple_references_of_varying_number():
    refs = [
        [EN_REF[0], "A cat sat on the mat."],
        [EN_REF[1]],
        [EN_REF[2], "Hello world", "Hi world"],
    ]
    out = metrics.bleu(EN_PRED, refs, lang="en")
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(3)]
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(EN_PRED, streams).score)
    assert out["bleu"] > metrics.bleu(EN_PRED, EN_REF, lang="en")["bleu"]


def test_sentence_bleu_and_chrf_equal_sacrebleu():
    assert metrics.sentence_bleu(EN_PRED[0], EN_REF[0]) == pytest.approx(
        sacrebleu.sentence_bleu(EN_PRED[0], [EN_REF[0]]).score
    )
    assert metrics.sentence_bleu(ZH_PRED[0], [ZH_REF[0]]) == pytest.approx(
        sacrebleu.sentence_bleu(ZH_PRED[0], [ZH_REF[0]], tokenize="zh").score
    )
    assert metrics.chrf(ZH_PRED, ZH_REF)["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(ZH_PRED, [ZH_REF]).score
    )


def test_rouge_english_equals_rouge_score_default():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    out = metrics.rouge(EN_PRED, EN_REF)
    for t in ("rouge1", "rouge2", "rougeL"):
        mean = sum(scorer.score(r, p)[t].fmeasure for p, r in zip(EN_PRED, EN_REF)) / len(EN_PRED)
        assert out[t] == pytest.approx(100 * mean)
    assert out["rouge_tokenizer"] == "default"


def test_rouge_chinese_tokenizers():
    jieba_out = metrics.rouge(ZH_PRED, ZH_REF)
    char_out = metrics.rouge(ZH_PRED, ZH_REF, zh_tokenizer="char")
    assert jieba_out["rouge_tokenizer"] == "jieba" and char_out["rouge_tokenizer"] == "char"
    assert 0 < jieba_out["rouge1"] < 100 and 0 < char_out["rouge1"] < 100
    # rouge-score's own tokenizer keeps only [a-z0-9]: Chinese would score nothing.
    assert rouge_scorer.RougeScorer(["rouge1"]).score(ZH_REF[0], ZH_PRED[0])["rouge1"].fmeasure == 0
    assert metrics.rouge(["我爱北京"], ["我爱北京"], zh_tokenizer="char")[
        "rougeL"
    ] == pytest.approx(100)
    with pytest.raises(ConfigError):
        metrics.rouge(ZH_PRED, ZH_REF, zh_tokenizer="spaces")


def test_rouge_takes_best_reference():
    out = metrics.rouge(["the cat sat"], [["a dog ran", "the cat sat"]])
    assert out["rouge1"] == pytest.approx(100)


class _NoSynonyms:
    def synsets(self, *args, **kwargs):
        return []


def test_meteor_without_wordnet_equals_nltk_exact_and_stem():
    out = metrics.meteor(EN_PRED, EN_REF, use_wordnet=False)
    assert out["meteor_matching"] == "exact+stem"
    words = metrics._EN_WORD_RE.findall
    expected = (
        sum(
            meteor_score([words(r)], words(p), wordnet=_NoSynonyms())
            for p, r in zip(EN_PRED, EN_REF)
        )
        / 3
    )
    assert out["meteor"] == pytest.approx(100 * expected)


def test_meteor_says_loudly_when_synonym_matching_is_off(tmp_path):
    """On a machine with no WordNet data (none for nltk, no system dict directory) METEOR still
    scores, and says once, on stderr, that synonyms are off and how to turn them on."""
    import subprocess
    import sys

    code = (
        "from instructgen.evaluate import metrics as m\n"
        "m.SYSTEM_WORDNET_DIRS = ()\n"
        "for _ in range(2):\n"
        "    out = m.meteor(['the car is red'], ['the auto is red'])\n"
        "print(out['meteor_matching'])\n"
    )
    env = dict(os.environ, NLTK_DATA=str(tmp_path), WNSEARCHDIR=str(tmp_path))
    env.pop("HOME", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exact+stem"
    assert proc.stderr.count("synonym matching is OFF") == 1
    assert "apt install wordnet-base" in proc.stderr


def test_meteor_uses_wordnet_synonyms_when_present():
    reader, where = metrics.find_wordnet()
    # nltk matches synonyms after stemming the leftovers, so use words that are their own stems.
    auto = metrics.meteor(["the car is red"], ["the auto is red"])
    off = metrics.meteor(["the car is red"], ["the auto is red"], use_wordnet=False)
    if reader is None:
        assert auto == off and where == "none"
        pytest.skip("no WordNet data (nltk_data or Debian wordnet-base) on this machine")
    assert "auto" in {lemma for s in reader.synsets("car") for lemma in s.lemma_names()}
    assert auto["meteor_matching"] == "exact+stem+wordnet" and auto["meteor_wordnet"] == where
    assert auto["meteor"] > off["meteor"]


def test_meteor_chinese_segments_words():
    same = metrics.meteor(["今天天气很好"], ["今天天气很好"], use_wordnet=False)
    diff = metrics.meteor(ZH_PRED, ZH_REF, use_wordnet=False)
    assert same["meteor"] > 90
    assert 0 < diff["meteor"] < same["meteor"]


def test_exact_match_and_f1_squad_normalisation():
    assert metrics.normalize_answer("The  Cat, sat!") == "cat sat"
    assert metrics.exact_match(["The cat."], ["cat"])["em"] == 100
    assert metrics.exact_match(["北京。"], [["上海", "北京"]])["em"] == 100  # zh: unicode
    assert metrics.f1(["the cat sat"], ["a cat sat down"])["f1"] == pytest.approx(80)
    assert metrics.token_f1("北京大学", "北京", "unicode") == pytest.approx(2 / 3)
    assert metrics.f1(["", "x"], ["", "y"], normalization="unicode")["f1"] == pytest.approx(50)


# (prediction, reference, EM, F1) as the official SQuAD v1.1 evaluate script scores them:
# string.punctuation only, whitespace tokens, F1 0 when either side has no tokens
SQUAD_V11 = [
    ("Hamlet", "“Hamlet”", 0, 0.0),  # curly quotes are not ASCII punctuation
    ("Hamlet", '"Hamlet"', 1, 1.0),
    ("the Hamlet.", "Hamlet", 1, 1.0),
    ("", "", 1, 0.0),
    ("Prince Hamlet", "Hamlet", 0, 2 / 3),
    ("café—bar", "café bar", 0, 0.0),  # an em dash joins the words
    ("北京大学", "北京", 0, 0.0),  # one whitespace token each
]


@pytest.mark.parametrize("pred,ref,em,f1", SQUAD_V11)
def test_em_f1_follow_the_official_squad_script_by_default(pred, ref, em, f1):
    assert metrics.exact_match([pred], [ref], lang="en")["em"] == 100 * em
    assert metrics.f1([pred], [ref], lang="en")["f1"] == pytest.approx(100 * f1)
    out = metrics.compute(["em", "f1"], [pred], [ref], lang="en")
    assert out["em_normalization"] == out["f1_normalization"] == "squad"


def test_em_f1_named_options():
    assert metrics.exact_match(["Hamlet"], ["“Hamlet”"], normalization="unicode")["em"] == 100
    assert metrics.f1([""], [""], normalization="squad2")["f1"] == 100
    assert metrics.compute(["em"], ["北京"], ["北京。"])["em_normalization"] == "unicode"
    with pytest.raises(ConfigError, match="normalization"):
        metrics.f1(["a"], ["a"], normalization="nfc")


def test_accuracy():
    assert metrics.accuracy([True, False, True, True])["accuracy"] == pytest.approx(75)
    assert metrics.accuracy(["A ", "B"], ["A", "C"])["accuracy"] == pytest.approx(50)
    with pytest.raises(UserError):
        metrics.accuracy(["A"])


def test_compute_dispatches_and_reports_language():
    out = metrics.compute(
        ["bleu", "rouge", "meteor", "em", "f1", "chrf", "accuracy"], ZH_PRED, ZH_REF
    )
    assert out["n"] == 2 and out["lang"] == "zh"
    assert out["bleu_tokenize"] == "zh" and out["rouge_tokenizer"] == "jieba"
    for key in ("bleu", "rouge1", "rouge2", "rougeL", "meteor", "em", "f1", "chrf", "accuracy"):
        assert 0 <= out[key] <= 100
    json.dumps(out)
    with pytest.raises(ConfigError, match="bogus"):
        metrics.compute(["bleu", "bogus"], EN_PRED, EN_REF)
    with pytest.raises(UserError, match="3 predictions but 2 references"):
        metrics.compute(["bleu"], EN_PRED, EN_REF[:2])


def test_read_lines_text_and_jsonl(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first\n\nthird\n", encoding="utf-8")
    assert metrics.read_lines(txt) == ["first", "", "third"]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"text": "你好"}\n\n{"text": "b", "id": 2}\n', encoding="utf-8")
    assert metrics.read_lines(jl) == ["你好", "b"]


@pytest.mark.parametrize(
    ("content", "line", "field"),
    [
        (b'{"text": "a"}\n{"text": \n', 2, None),
        (b'{"text": "a"}\n{"txt": "b"}\n', 2, "text"),
        (b'{"text": 3}\n', 1, "text"),
        (b'{"text": "a"}\n{"text": "\xff"}\n', 2, None),
        (b"", None, None),
    ],
)
def test_read_lines_errors_name_file_line_field(tmp_path, content, line, field):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        metrics.read_lines(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
    assert str(path) in str(err.value)


def test_read_lines_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing.txt"):
        metrics.read_lines(tmp_path / "missing.txt")


def test_meteor_falls_back_without_any_wordnet(monkeypatch):
    monkeypatch.setattr(metrics, "SYSTEM_WORDNET_DIRS", ())
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    metrics.find_wordnet.cache_clear()
    try:
        reader, where = metrics.find_wordnet()
        out = metrics.meteor(["the car is red"], ["the auto is red"])
        assert where in ("none", "nltk_data")  # nltk's own data, if installed, still wins
        if where == "none":
            assert reader is None and out["meteor_matching"] == "exact+stem"
            with pytest.raises(ConfigError):
                metrics.meteor(["a"], ["a"], use_wordnet=True)
    finally:
        metrics.find_wordnet.cache_clear()
