"""Pretraining corpora → token shards, and the reader the pretraining loop samples from.

`tokenize_corpus` streams documents from .txt / .jsonl / .json / .parquet / .csv files, encodes
them in batches, appends eos after each document and writes flat little-endian token files
`shard_00000.bin`, ... (uint16 when the vocabulary fits, else uint32) plus `meta.json`. Memory
stays bounded by one batch: corpora larger than RAM are fine. `TokenShards` memory-maps the
shards read-only and returns contiguous windows across shard boundaries.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructgen.errors import DataError, UserError
from instructgen.files import atomic_dir
from instructgen.tokenizer import Tokenizer, iter_jsonl, iter_txt, not_utf8_error

FORMAT_VERSION = 1
DEFAULT_SHARD_TOKENS = 64 * 2**20
TEXT_SUFFIXES = (".txt", ".md")
JSON_SUFFIXES = (".jsonl", ".json")
TABLE_BUILDERS = {".parquet": "parquet", ".csv": "csv"}  # suffix -> `datasets` builder
SUFFIXES = (*TEXT_SUFFIXES, *JSON_SUFFIXES, *TABLE_BUILDERS)
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}

_BATCH_DOCS = 1024
_BATCH_CHARS = 2 * 2**20


def shard_dtype(vocab_size: int) -> str:
    """The narrowest shard dtype holding every id: "uint16" if vocab_size <= 2**16, else "uint32"."""
    if vocab_size <= 2**16:
        return "uint16"
    if vocab_size <= 2**32:
        return "uint32"
    raise UserError(f"vocabulary of {vocab_size} tokens does not fit in uint32 token shards")


# ----------------------------------------------------------------------------------------------
# Reading documents


def iter_documents(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents of one input file: blank-line-separated blocks of a .txt/.md file,
    the `text_field` of each .jsonl/.json record, or the `text_field` column of a .parquet/.csv
    table. Missing fields, bad JSON or non-UTF-8 bytes raise DataError naming file and line."""
    path = check_input(path)
    suffix = path.suffix.lower()
    try:
        if suffix in TEXT_SUFFIXES:
            yield from iter_txt(path)
        elif suffix in JSON_SUFFIXES:
            yield from iter_jsonl(path, text_field, require_field=True)
        else:
            yield from _iter_table(path, TABLE_BUILDERS[suffix], text_field)
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", file=str(path)) from None


def check_input(path: str | Path) -> Path:
    """`path` as a Path if it is an existing file of a known type, else a DataError."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"unknown extension '{path.suffix}' (expected one of {', '.join(SUFFIXES)})",
            file=str(path),
        )
    if not path.exists():
        raise DataError("input file not found", file=str(path))
    if not path.is_file():
        raise DataError("input is not a regular file", file=str(path))
    return path


def _iter_table(path: Path, builder: str, text_field: str) -> Iterator[str]:
    """Rows of a Parquet/CSV file streamed by `datasets` (bounded memory, no cache written)."""
    import datasets
    import pyarrow

    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
        for row, record in enumerate(ds, 1):
            if row == 1 and text_field not in record:
                columns = ", ".join(record) or "none"
                raise DataError(
                    f"no column '{text_field}' (columns: {columns})",
                    file=str(path),
                    field=text_field,
                )
            text = record[text_field]
            if not isinstance(text, str):
                raise DataError(
                    f"row {row}: expected text, got {'null' if text is None else type(text).__name__}",
                    file=str(path),
                    field=text_field,
                )
            yield text
    except UnicodeDecodeError as exc:
        raise not_utf8_error(path, exc) from None
    except (ValueError, pyarrow.ArrowException, datasets.exceptions.DatasetGenerationError) as exc:
        raise DataError(f"cannot read {builder} file: {exc}", file=str(path)) from None


# ----------------------------------------------------------------------------------------------
# Writing shards


class _ShardWriter:
    """Appends token arrays to shard_00000.bin, shard_00001.bin, ...; each holds `shard_tokens`
    tokens except the last."""

    def __init__(self, out: Path, dtype: str, shard_tokens: int):
        self.out, self.dtype, self.shard_tokens = out, DTYPES[dtype], shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._file = None
        self._count = 0

    def write(self, ids: np.ndarray) -> None:
        ids = ids.astype(self.dtype, copy=False)
        while len(ids):
            if self._file is None:
                name = f"shard_{len(self.shards):05d}.bin"
                self.shards.append({"file": name, "num_tokens": 0})
                self._file = (self.out / name).open("wb", buffering=8 * 2**20)
            take = min(len(ids), self.shard_tokens - self._count)
            self._file.write(ids[:take].tobytes())
            self._count += take
            self.shards[-1]["num_tokens"] = self._count
            ids = ids[take:]
            if self._count == self.shard_tokens:
                self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._count = None, 0


def tokenize_corpus(
    inputs: Sequence[str | Path],
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    *,
    text_field: str = "text",
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    append_eos: bool = True,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Tokenize `inputs` into token shards at `out_dir` and return its meta.json as a dict.

    The shards hold the concatenation doc_1 + [eos] + doc_2 + [eos] + ...; empty documents are
    skipped. Output appears at `out_dir` only when every input was read without error."""
    if not inputs:
        raise UserError("no input files given")
    if shard_tokens < 1:
        raise UserError(f"shard_tokens must be positive, got {shard_tokens}")
    out = Path(out_dir)
    _check_out_dir(out, inputs)
    for file in inputs:  # fail fast, before any work
        check_input(file)

    tokenizer = Tokenizer.from_dir(tokenizer_dir)
    vocab_size = len(tokenizer)
    dtype = shard_dtype(vocab_size)
    eos_id = tokenizer.eos_id
    if append_eos and eos_id is None:
        raise UserError(
            "the tokenizer has no eos token to end documents with", file=str(tokenizer_dir)
        )

    from tqdm import tqdm

    num_docs = num_tokens = 0
    start = time.perf_counter()
    with (
        atomic_dir(out) as tmp,
        tqdm(
            desc="tokenize",
            unit=" docs",
            file=sys.stderr,
            disable=not show_progress,
            dynamic_ncols=True,
        ) as bar,
    ):
        writer = _ShardWriter(tmp, dtype, shard_tokens)
        try:
            for file in inputs:
                file_docs = 0
                for batch in _batches(iter_documents(file, text_field)):
                    ids = _encode(tokenizer, batch, eos_id if append_eos else None)
                    writer.write(ids)
                    file_docs += len(batch)
                    num_tokens += len(ids)
                    bar.update(len(batch))
                    rate = num_tokens / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix_str(f"{num_tokens:,} tokens, {rate:,.0f} tok/s", refresh=False)
                if file_docs == 0:
                    raise DataError("no text found (the input is empty)", file=str(file))
                num_docs += file_docs
        finally:
            writer.close()
        meta = {
            "version": FORMAT_VERSION,
            "num_tokens": num_tokens,
            "num_documents": num_docs,
            "dtype": dtype,
            "shards": writer.shards,
            "tokenizer_fingerprint": tokenizer.fingerprint(),
            "vocab_size": vocab_size,
            "eos_id": eos_id,
            "append_eos": append_eos,
            "inputs": [str(f) for f in inputs],
            "text_field": text_field,
        }
        (tmp / "meta.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return meta


def _check_out_dir(out: Path, inputs: Sequence[str | Path]) -> None:
    """Refuse an `out` whose replacement would destroy something that is not token shards."""
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a directory", file=str(out))
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").is_file():
        raise UserError(
            "output directory exists and does not hold token shards; refusing to replace it",
            file=str(out),
        )
    for file in inputs:
        if Path(file).resolve().is_relative_to(out.resolve()):
            raise UserError("input lies inside the output directory", file=str(file))


def _batches(docs: Iterator[str]) -> Iterator[list[str]]:
    """Group non-empty documents into batches of at most _BATCH_DOCS docs or ~_BATCH_CHARS chars."""
    batch: list[str] = []
    chars = 0
    for doc in docs:
        if not doc.strip():
            continue
        batch.append(doc)
        chars += len(doc)
        if len(batch) >= _BATCH_DOCS or chars >= _BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _encode(tokenizer: Tokenizer, docs: list[str], eos_id: int | None) -> np.ndarray:
    """ids(doc_1) + [eos] + ids(doc_2) + [eos] + ... as one int64 array."""
    encoded = tokenizer.encode_batch(docs)
    if eos_id is not None:
        encoded = [part for ids in encoded for part in (ids, (eos_id,))]
    count = sum(len(ids) for ids in encoded)
    return np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64, count=count)


# ----------------------------------------------------------------------------------------------
# Reading shards


class TokenShards:
    """Read-only view of a token-shards directory as one flat token sequence.

    With `expect_fingerprint`, shards written by another tokenizer are a UserError; with
    `vocab_size` (the model's), shards holding ids the model cannot embed are a UserError."""

    def __init__(
        self,
        path: str | Path,
        *,
        expect_fingerprint: str | None = None,
        vocab_size: int | None = None,
    ):
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.dtype = DTYPES[self.meta["dtype"]]
        self.check_compatible(expect_fingerprint, vocab_size)
        shards = [s for s in self.meta["shards"] if s["num_tokens"] > 0]
        self._files = [self.path / s["file"] for s in shards]
        self._sizes = [s["num_tokens"] for s in shards]
        self._starts = np.cumsum([0, *self._sizes])  # shard i holds tokens [starts[i], starts[i+1])
        self._open()

    def _open(self) -> None:
        self._maps = [
            np.memmap(f, dtype=self.dtype, mode="r", shape=(n,))
            for f, n in zip(self._files, self._sizes)
        ]

    def __getstate__(self) -> dict[str, Any]:  # pickle (DataLoader workers) reopens, never copies
        return {k: v for k, v in self.__dict__.items() if k != "_maps"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()

    def check_compatible(self, fingerprint: str | None, vocab_size: int | None) -> None:
        """Raise UserError unless the shards were written by the tokenizer with `fingerprint`
        and every id they hold is < `vocab_size`."""
        ours = self.meta["tokenizer_fingerprint"]
        if fingerprint is not None and fingerprint != ours:
            raise UserError(
                f"shards were tokenized with a different tokenizer (fingerprint {ours}, "
                f"model's {fingerprint}); re-run `instructgen data tokenize` with the model's "
                "tokenizer",
                file=str(self.path),
            )
        if vocab_size is not None and vocab_size < self.meta["vocab_size"]:
            raise UserError(
                f"shards hold token ids up to {self.meta['vocab_size'] - 1} but the model's "
                f"vocabulary has only {vocab_size} tokens",
                file=str(self.path),
            )

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def num_documents(self) -> int:
        return int(self.meta["num_documents"])

    @property
    def eos_id(self) -> int | None:
        return self.meta["eos_id"]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def window(self, start: int, length: int) -> np.ndarray:
        """tokens[start : start + length] as int64, read across shard boundaries as needed."""
        if start < 0 or length < 0 or start + length > len(self):
            raise IndexError(f"window [{start}, {start + length}) outside [0, {len(self)})")
        out = np.empty(length, dtype=np.int64)
        shard = int(np.searchsorted(self._starts, start, side="right")) - 1
        done = 0
        while done < length:
            local = start + done - int(self._starts[shard])
            take = min(length - done, self._sizes[shard] - local)
            out[done : done + take] = self._maps[shard][local : local + take]
            done += take
            shard += 1
        return out

    def __repr__(self) -> str:
        return (
            f"TokenShards({str(self.path)!r}, tokens={len(self)}, documents={self.num_documents}, "
            f"dtype={self.meta['dtype']}, shards={len(self._files)})"
        )


_META_KEYS = {
    "version": int,
    "num_tokens": int,
    "num_documents": int,
    "dtype": str,
    "shards": list,
    "tokenizer_fingerprint": str,
    "vocab_size": int,
}


def read_meta(path: str | Path) -> dict[str, Any]:
    """Load and check `path`/meta.json against the shard files beside it (DataError if off)."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DataError("not a token-shards directory (no meta.json)", file=str(path))
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid meta.json ({exc})", file=str(meta_file)) from None
    if not isinstance(meta, dict):
        raise DataError("meta.json must hold an object", file=str(meta_file))
    for key, kind in _META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise DataError(f"missing or not {kind.__name__}", file=str(meta_file), field=key)
    if meta["version"] > FORMAT_VERSION:
        raise DataError(
            f"shards format version {meta['version']} is newer than this instructgen reads "
            f"({FORMAT_VERSION}); upgrade instructgen",
            file=str(meta_file),
            field="version",
        )
    if meta["dtype"] not in DTYPES:
        raise DataError(f"unknown dtype {meta['dtype']!r}", file=str(meta_file), field="dtype")
    if meta["vocab_size"] > np.iinfo(DTYPES[meta["dtype"]]).max + 1:
        raise DataError(
            f"vocab_size {meta['vocab_size']} does not fit in {meta['dtype']}",
            file=str(meta_file),
            field="vocab_size",
        )
    itemsize = DTYPES[meta["dtype"]].itemsize
    for shard in meta["shards"]:
        file = path / str(shard.get("file", "")) if isinstance(shard, dict) else None
        if file is None or not isinstance(shard.get("num_tokens"), int) or file.parent != path:
            raise DataError(
                "each shard needs 'file' and 'num_tokens'", file=str(meta_file), field="shards"
            )
        if not file.is_file():
            raise DataError("shard file missing", file=str(file))
        if file.stat().st_size != shard["num_tokens"] * itemsize:
            raise DataError(
                f"shard holds {file.stat().st_size} bytes, meta.json says "
                f"{shard['num_tokens']} tokens of {meta['dtype']} (truncated or corrupt)",
                file=str(file),
            )
    if sum(s["num_tokens"] for s in meta["shards"]) != meta["num_tokens"]:
        raise DataError(
            "num_tokens differs from the sum over shards", file=str(meta_file), field="num_tokens"
        )
    return meta
