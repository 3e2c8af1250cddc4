"""Corpus → token shards: round trips per format, dtype choice, windows across shards, errors."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from instructgen.data.corpus import TokenShards, read_meta, shard_dtype, tokenize_corpus
from instructgen.errors import DataError, UserError
from instructgen.tokenizer import Tokenizer

DOCS = [
    "春天来了，花开了，小鸟在树上唱歌。",
    "The quick brown fox jumps over the lazy dog.\nIt was spring.",
    "客服：您好！退货期限是30天。Returns are free within 30 days.",
    "数字 12 + 30 = 42 😀",
    "Write a short poem about the sea.",
]


def _write_txt(path: Path, docs: list[str]) -> Path:
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    lines = (json.dumps(r, ensure_ascii=False) for r in records)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_table(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    table = pa.table(columns)
    if path.suffix == ".csv":
        pyarrow.csv.write_csv(table, path)
    else:
        pyarrow.parquet.write_table(table, path, row_group_size=2)
    return path


def _make_input(tmp_path: Path, fmt: str, docs: list[str], field: str = "text") -> Path:
    path = tmp_path / f"corpus.{fmt}"
    if fmt == "txt":
        return _write_txt(path, docs)
    if fmt == "jsonl":
        return _write_jsonl(path, [{field: d, "id": i} for i, d in enumerate(docs)])
    if fmt == "json":
        path.write_text(json.dumps([{field: d} for d in docs], ensure_ascii=False), "utf-8")
        return path
    return _write_table(path, {"id": list(range(len(docs))), field: docs})


def _split_docs(ids: np.ndarray, eos_id: int) -> list[list[int]]:
    cuts = np.flatnonzero(ids == eos_id)
    assert len(cuts) and cuts[-1] == len(ids) - 1, "the last document must end with eos"
    return [part[:-1].tolist() for part in np.split(ids, cuts + 1)[:-1]]


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "json", "csv", "parquet"])
def test_round_trip_per_format(tmp_path, tokenizer_dir, fmt):
    field = "text" if fmt == "txt" else "content"
    src = _make_input(tmp_path, fmt, DOCS, field)
    out = tmp_path / "shards"
    meta = tokenize_corpus([src], tokenizer_dir, out, text_field=field, show_progress=False)

    tok = Tokenizer.from_dir(tokenizer_dir)
    shards = TokenShards(out, expect_fingerprint=tok.fingerprint(), vocab_size=len(tok))
    ids = shards.window(0, len(shards))
    expected = [d + "\n" for d in DOCS] if fmt == "txt" else DOCS
    assert [tok.decode(d) for d in _split_docs(ids, tok.eos_id)] == expected
    assert tok.decode(ids.tolist()) == "".join(d + "<|endoftext|>" for d in expected)
    assert ids.dtype == np.int64 and len(shards) == meta["num_tokens"]
    assert shards.num_documents == meta["num_documents"] == len(DOCS)
    assert meta == read_meta(out) == shards.meta
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == len(tok) == shards.vocab_size
    assert meta["eos_id"] == tok.eos_id and meta["tokenizer_fingerprint"] == tok.fingerprint()
    assert meta["inputs"] == [str(src)] and meta["text_field"] == field and meta["version"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard_00000.bin"]


def test_many_inputs_are_concatenated_in_order_and_rerun_is_deterministic(tmp_path, tokenizer_dir):
    a = _make_input(tmp_path, "txt", DOCS[:2])
    b = _make_input(tmp_path, "jsonl", DOCS[2:] + [""])  # an empty document is skipped
    out = tmp_path / "out"
    meta = tokenize_corpus([a, b], tokenizer_dir, out, shard_tokens=10, show_progress=False)
    tok = Tokenizer.from_dir(tokenizer_dir)
    expected = [tok.encode(d + "\n") for d in DOCS[:2]] + [tok.encode(d) for d in DOCS[2:]]
    shards = TokenShards(out)
    assert _split_docs(shards.window(0, len(shards)), tok.eos_id) == expected
    assert meta["num_documents"] == len(DOCS)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    tokenize_corpus([a, b], tokenizer_dir, out, shard_tokens=10, show_progress=False)  # replaces
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_windows_across_shard_boundaries(tmp_path, tokenizer_dir):
    src = _make_input(tmp_path, "txt", DOCS * 3)
    out = tmp_path / "out"
    meta = tokenize_corpus([src], tokenizer_dir, out, shard_tokens=7, show_progress=False)
    n = meta["num_tokens"]
    assert [s["num_tokens"] for s in meta["shards"]] == [7] * (n // 7) + ([n % 7] if n % 7 else [])
    assert [s["file"] for s in meta["shards"]][:2] == ["shard_00000.bin", "shard_00001.bin"]
    for s in meta["shards"]:
        assert (out / s["file"]).stat().st_size == 2 * s["num_tokens"]

    tok = Tokenizer.from_dir(tokenizer_dir)
    flat = np.array([i for d in DOCS * 3 for i in [*tok.encode(d + "\n"), tok.eos_id]])
    shards = TokenShards(out)
    assert len(shards) == n == len(flat)
    for start in range(0, 30):
        for length in (0, 1, 6, 7, 8, 15, 23):
            assert shards.window(start, length).tolist() == flat[start : start + length].tolist()
    assert shards.window(n - 9, 9).tolist() == flat[-9:].tolist()
    for start, length in [(-1, 2), (n - 1, 2), (0, n + 1), (3, -1)]:
        with pytest.raises(IndexError):
            shards.window(start, length)
    clone = pickle.loads(pickle.dumps(shards))
    assert clone.window(5, 20).tolist() == flat[5:25].tolist()


def test_pickling_reopens_instead_of_copying_tokens(tmp_path, tokenizer_dir):
    src = _make_input(tmp_path, "txt", DOCS * 200)
    tokenize_corpus([src], tokenizer_dir, tmp_path / "out", show_progress=False)
    shards = TokenShards(tmp_path / "out")
    blob = pickle.dumps(shards)  # what DataLoader workers receive
    assert len(shards) > 4000 and len(blob) < 1500
    assert pickle.loads(blob).window(100, 50).tolist() == shards.window(100, 50).tolist()


def test_dtype_choice():
    assert shard_dtype(400) == "uint16"
    assert shard_dtype(65536) == "uint16"
    assert shard_dtype(65537) == "uint32"
    assert shard_dtype(152064) == "uint32"


def test_large_vocabulary_writes_uint32(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    words = [f"w{i}" for i in range(70_000)]
    vocab = {"<unk>": 0, "<|endoftext|>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    backend = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok_dir = tmp_path / "bigtok"
    Tokenizer(backend, {"eos_token": "<|endoftext|>"}).save(tok_dir)
    src = _write_txt(tmp_path / "c.txt", ["w1 w69999 w65536", "w70 w0"])

    meta = tokenize_corpus([src], tok_dir, tmp_path / "out", show_progress=False)
    assert meta["dtype"] == "uint32" and meta["vocab_size"] == 70_002
    assert (tmp_path / "out" / "shard_00000.bin").stat().st_size == 4 * meta["num_tokens"]
    got = TokenShards(tmp_path / "out").window(0, meta["num_tokens"]).tolist()
    assert got == [3, 70001, 65538, 1, 72, 2, 1]


def test_progress_bar_reports_documents_and_tokens_per_second(tmp_path, tokenizer_dir, capsys):
    tokenize_corpus([_make_input(tmp_path, "txt", DOCS)], tokenizer_dir, tmp_path / "o")
    err = capsys.readouterr().err
    assert "5 docs" in err and "tok/s" in err


# ----------------------------------------------------------------------------------------------
# Errors: DataError naming file / line / field, and nothing left at the output path


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    t = tmp_path
    not_utf8 = t / "latin1.txt"
    not_utf8.write_bytes(b"first line\n\nsecond\n" + "caf\xe9\n".encode("latin-1"))
    not_utf8_jsonl = t / "latin1.jsonl"
    not_utf8_jsonl.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    bad_json = t / "bad.jsonl"
    bad_json.write_text('{"text": "ok"}\n\n{"text": oops}\n', encoding="utf-8")
    no_field = _write_jsonl(t / "nofield.jsonl", [{"text": "ok"}, {"body": "where is text?"}])
    not_string = _write_jsonl(t / "notstr.jsonl", [{"text": 5}])
    not_object = t / "list.jsonl"
    not_object.write_text('["a", "b"]\n', encoding="utf-8")
    empty_txt = t / "empty.txt"
    empty_txt.write_text("\n  \n\n", encoding="utf-8")
    empty_jsonl = _write_jsonl(t / "blank.jsonl", [{"text": ""}])
    bad_parquet = t / "bad.parquet"
    bad_parquet.write_bytes(b"this is not parquet")
    no_column = _write_table(t / "nocol.csv", {"body": ["a", "b"]})
    null_row = _write_table(t / "null.parquet", {"text": ["a", "b", None]})
    bad_csv = t / "latin1.csv"
    bad_csv.write_bytes(b"text\nok\ncaf\xe9\n")
    unknown = t / "corpus.docx"
    unknown.write_text("hello", encoding="utf-8")
    directory = t / "folder.txt"
    directory.mkdir()
    return {
        "missing": (t / "nope.txt", {"match": "not found"}),
        "unknown extension": (unknown, {"match": "unknown extension '.docx'"}),
        "directory": (directory, {"match": "not a regular file"}),
        "not utf-8 txt": (not_utf8, {"line": 4, "match": "not UTF-8"}),
        "not utf-8 jsonl": (not_utf8_jsonl, {"line": 2, "match": "not UTF-8"}),
        "not utf-8 csv": (bad_csv, {"line": 3, "match": "not UTF-8"}),
        "invalid json": (bad_json, {"line": 3, "match": "invalid JSON"}),
        "no field": (no_field, {"line": 2, "field": "text", "match": "no field 'text'.*body"}),
        "not a string": (not_string, {"line": 1, "field": "text", "match": "got int"}),
        "not an object": (not_object, {"line": 1, "field": "text", "match": "JSON object"}),
        "empty txt": (empty_txt, {"match": "no text"}),
        "empty jsonl": (empty_jsonl, {"match": "no text"}),
        "corrupt parquet": (bad_parquet, {"match": "cannot read parquet"}),
        "no column": (no_column, {"field": "text", "match": "no column 'text'.*body"}),
        "null row": (null_row, {"field": "text", "match": "row 3: expected text, got null"}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "unknown extension",
        "directory",
        "not utf-8 txt",
        "not utf-8 jsonl",
        "not utf-8 csv",
        "invalid json",
        "no field",
        "not a string",
        "not an object",
        "empty txt",
        "empty jsonl",
        "corrupt parquet",
        "no column",
        "null row",
    ],
)
def test_bad_input_is_a_data_error_and_leaves_no_output(tmp_path, tokenizer_dir, case):
    path, want = _bad_inputs(tmp_path)[case]
    good = _make_input(tmp_path, "txt", DOCS)  # read first: the failure comes mid-run
    out = tmp_path / "out"
    with pytest.raises(DataError, match=want["match"]) as info:
        tokenize_corpus([good, path], tokenizer_dir, out, shard_tokens=8, show_progress=False)
    err = info.value
    assert err.file == str(path) and str(path) in str(err)
    assert err.line == want.get("line") and err.field == want.get("field")
    if "line" in want:
        assert f"{path}:{want['line']}:" in str(err)
    _no_leftovers(out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, tokenizer_dir):
    src = _make_input(tmp_path, "txt", DOCS)
    src.chmod(0)
    with pytest.raises(DataError, match="cannot read") as info:
        tokenize_corpus([src], tokenizer_dir, tmp_path / "out", show_progress=False)
    assert info.value.file == str(src)
    _no_leftovers(tmp_path / "out")


def test_failed_rerun_keeps_previous_shards(tmp_path, tokenizer_dir):
    good = _make_input(tmp_path, "txt", DOCS)
    out = tmp_path / "out"
    tokenize_corpus([good], tokenizer_dir, out, show_progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError):
        tokenize_corpus([good, tmp_path / "x.jsonl"], tokenizer_dir, out, show_progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_refuses_to_replace_a_directory_that_is_not_shards(tmp_path, tokenizer_dir):
    out = tmp_path / "mydata"
    out.mkdir()
    src = _make_input(out, "txt", DOCS)
    with pytest.raises(UserError, match="does not hold token shards"):
        tokenize_corpus([src], tokenizer_dir, out, show_progress=False)
    assert src.is_file()
    (out / "meta.json").write_text("{}", encoding="utf-8")  # looks like shards, input inside
    with pytest.raises(UserError, match="inside the output directory"):
        tokenize_corpus([src], tokenizer_dir, out, show_progress=False)
    assert src.is_file()


# ----------------------------------------------------------------------------------------------
# The reader's checks


@pytest.fixture
def shards_dir(tmp_path, tokenizer_dir) -> Path:
    src = _make_input(tmp_path, "txt", DOCS)
    tokenize_corpus([src], tokenizer_dir, tmp_path / "shards", shard_tokens=16, show_progress=False)
    return tmp_path / "shards"


def test_fingerprint_and_vocabulary_checks(shards_dir, tokenizer_dir):
    tok = Tokenizer.from_dir(tokenizer_dir)
    ours = tok.fingerprint()
    with pytest.raises(UserError) as info:
        TokenShards(shards_dir, expect_fingerprint="0123456789abcdef")
    assert f"different tokenizer (fingerprint {ours}, model's 0123456789abcdef)" in str(info.value)
    with pytest.raises(UserError, match="only 100 tokens"):
        TokenShards(shards_dir, expect_fingerprint=ours, vocab_size=100)
    assert len(TokenShards(shards_dir, expect_fingerprint=ours, vocab_size=len(tok) + 64)) > 0


def _edit_meta(shards_dir: Path, **changes) -> None:
    meta = json.loads((shards_dir / "meta.json").read_text(encoding="utf-8"))
    meta.update(changes)
    (shards_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_reader_rejects_broken_directories(shards_dir, tmp_path):
    with pytest.raises(DataError, match="no meta.json"):
        TokenShards(tmp_path / "elsewhere")
    with open(shards_dir / "shard_00001.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match="truncated or corrupt") as info:
        TokenShards(shards_dir)
    assert info.value.file == str(shards_dir / "shard_00001.bin")
    _edit_meta(shards_dir, vocab_size=70_000)
    with pytest.raises(DataError, match="does not fit in uint16"):
        TokenShards(shards_dir)
    _edit_meta(shards_dir, version=99)
    with pytest.raises(DataError, match="newer"):
        TokenShards(shards_dir)
    _edit_meta(shards_dir, shards="nope")
    with pytest.raises(DataError) as info:
        TokenShards(shards_dir)
    assert info.value.field == "shards"


def test_missing_tokenizer_is_a_user_error(tmp_path):
    src = _make_input(tmp_path, "txt", DOCS)
    with pytest.raises(UserError, match="tokenizer"):
        tokenize_corpus([src], tmp_path / "no-tok", tmp_path / "out", show_progress=False)
    _no_leftovers(tmp_path / "out")
