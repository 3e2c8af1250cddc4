"""Human evaluation: blinded rating sheets out, ratings back in.

`export` writes, for the outputs of two or more systems on the same items:

    OUT/sheet/rating_sheet.html     self-contained page (no external assets): each item's prompt
                                    and the systems' answers, shuffled and labelled A, B, C...
                                    per item; raters click a rating (1..scale) per answer, may
                                    comment, and press "Download ratings (CSV)"
    OUT/sheet/ratings_template.csv  the same rows to fill in by hand or in a spreadsheet
    OUT/mapping.json                which system each letter is, per item: keep it away from
                                    the raters (hand out only OUT/sheet/)

Ratings CSV columns: sheet, rater, item, output, rating, comment (a blank rating is skipped; a
blank rater is the file's name). `import_ratings` unblinds them and reports each system's mean
rating with a 95% Student-t confidence interval, head-to-head wins per pair of systems, and
inter-rater agreement: Cohen's kappa for two raters, Fleiss' kappa for three or more (on the
answers every rater rated).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import random
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError, DataError
from instructgen.evaluate.report import prompt_text, read_items
from instructgen.evaluate.stats import category_table, cohen_kappa, fleiss_kappa, mean_ci
from instructgen.files import atomic_write_json, atomic_write_text

COLUMNS = ("sheet", "rater", "item", "output", "rating", "comment")
SHEET, TEMPLATE, MAPPING = "rating_sheet.html", "ratings_template.csv", "mapping.json"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
INSTRUCTIONS = (
    "Rate each answer on its own, from 1 (useless or wrong) to {scale} (excellent: correct, "
    "helpful, follows every instruction). The answers come from different systems, shown in a "
    "random order; do not try to guess which is which. Enter your name, rate, then press "
    "“Download ratings (CSV)” and send the file back. Your ratings are kept in this browser "
    "until you clear them."
)


def export(
    systems: Mapping[str, Sequence[dict[str, Any]]] | Sequence[str | Path],
    out_dir: str | Path,
    *,
    seed: int = 0,
    scale: int = 5,
    title: str = "Rating sheet",
    instructions: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Write the blinded sheet, the CSV template and the mapping (see the module docstring).

    systems: {name: [{"id", "prompt", "output"}, ...]}, or run folders / output files
    (report.read_items), named after the folder or file. Items are those every system answered,
    in an order shuffled with `seed`, as are the answers within each item."""
    named = _named_systems(systems)
    if len(named) < 2:
        raise ConfigError(
            "human evaluation needs the outputs of at least two systems", field="systems"
        )
    if len(named) > len(LETTERS):
        raise ConfigError(f"at most {len(LETTERS)} systems per sheet", field="systems")
    if not 2 <= scale <= 10:
        raise ConfigError(f"must be between 2 and 10, got {scale}", field="scale")
    by_system = {name: {str(it["id"]): it for it in items} for name, items in named.items()}
    first = next(iter(named.values()))
    ids = [str(it["id"]) for it in first if all(str(it["id"]) in s for s in by_system.values())]
    if not ids:
        raise DataError("the systems have no item ids in common", field="id")
    rng = random.Random(seed)
    rng.shuffle(ids)
    if limit is not None:
        ids = ids[:limit]
    sheet_items, mapping_items = [], {}
    for n, item_id in enumerate(ids, 1):
        key = f"q{n:03d}"
        order = list(by_system)
        rng.shuffle(order)
        letters = dict(zip(LETTERS, order))
        mapping_items[key] = {"id": item_id, "outputs": letters}
        sheet_items.append(
            {
                "key": key,
                "prompt": prompt_text(by_system[order[0]][item_id]["prompt"]),
                "answers": [
                    {"letter": k, "text": str(by_system[s][item_id]["output"])}
                    for k, s in letters.items()
                ],
            }
        )
    body = json.dumps(mapping_items, sort_keys=True, ensure_ascii=False)
    sheet_id = hashlib.sha256(f"{seed}:{scale}:{body}".encode()).hexdigest()[:12]
    mapping = {
        "sheet": sheet_id,
        "seed": seed,
        "scale": scale,
        "systems": list(by_system),
        "items": mapping_items,
    }
    out = Path(out_dir)
    text = instructions or INSTRUCTIONS.format(scale=scale)
    atomic_write_text(
        out / "sheet" / SHEET, render_sheet(sheet_items, sheet_id, scale, title, text)
    )
    atomic_write_text(out / "sheet" / TEMPLATE, _template_csv(sheet_items, sheet_id))
    atomic_write_json(out / MAPPING, mapping)
    skipped = len(first) - len(ids) if limit is None else None
    return {
        "sheet": str(out / "sheet" / SHEET),
        "template": str(out / "sheet" / TEMPLATE),
        "mapping": str(out / MAPPING),
        "sheet_id": sheet_id,
        "items": len(ids),
        "systems": list(by_system),
        "skipped_items": skipped,
    }


def _named_systems(
    systems: Mapping[str, Sequence[dict[str, Any]]] | Sequence[str | Path],
) -> dict[str, list[dict[str, Any]]]:
    if isinstance(systems, Mapping):
        return {str(k): list(v) for k, v in systems.items()}
    named: dict[str, list[dict[str, Any]]] = {}
    for path in systems:
        p = Path(path)
        base = p.name if p.is_dir() else p.stem
        name, k = base, 2
        while name in named:
            name, k = f"{base}-{k}", k + 1
        named[name] = read_items(p)
    return named


def _template_csv(items: list[dict[str, Any]], sheet_id: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        for answer in item["answers"]:
            writer.writerow([sheet_id, "", item["key"], answer["letter"], "", ""])
    return buf.getvalue()


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
.item{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1.5rem 0}
.prompt,.answer .text{white-space:pre-wrap;background:#f6f6f6;padding:.6rem;border-radius:6px}
.answer{margin-top:1rem;padding-top:.5rem;border-top:1px dashed #ddd}
.scale label{margin-right:.8rem;white-space:nowrap}
textarea{width:100%;min-height:2.2rem}
#bar{position:sticky;top:0;background:#fff;padding:.6rem 0;border-bottom:1px solid #ddd}
#status{margin-left:1rem;color:#555}
"""

_SCRIPT = """
const SHEET = JSON.parse(document.getElementById('sheet-data').textContent);
const store = 'instructgen-ratings-' + SHEET.sheet;
function fields() { return Array.from(document.querySelectorAll('[data-item]')); }
function state() {
  const s = {rater: document.getElementById('rater').value, ratings: {}, comments: {}};
  for (const el of document.querySelectorAll('input[type=radio]:checked')) s.ratings[el.name] = el.value;
  for (const el of document.querySelectorAll('textarea')) s.comments[el.name] = el.value;
  return s;
}
function save() {
  try { localStorage.setItem(store, JSON.stringify(state())); } catch (e) { /* storage off */ }
  const done = Object.keys(state().ratings).length;
  document.getElementById('status').textContent = done + ' / ' + SHEET.answers + ' answers rated';
}
function restore() {
  let s = null;
  try { s = JSON.parse(localStorage.getItem(store) || 'null'); } catch (e) { /* storage off */ }
  if (s) {
    document.getElementById('rater').value = s.rater || '';
    for (const [name, value] of Object.entries(s.ratings || {})) {
      const el = document.querySelector(`input[name="${name}"][value="${value}"]`);
      if (el) el.checked = true;
    }
    for (const [name, value] of Object.entries(s.comments || {})) {
      const el = document.querySelector(`textarea[name="${name}"]`);
      if (el) el.value = value;
    }
  }
  save();
}
function cell(v) { v = String(v); return /[",\\n\\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
function csvText() {
  const s = state();
  const rows = [['sheet', 'rater', 'item', 'output', 'rating', 'comment']];
  for (const el of fields()) {
    const name = el.dataset.item + '-' + el.dataset.output;
    rows.push([SHEET.sheet, s.rater, el.dataset.item, el.dataset.output,
               s.ratings['r-' + name] || '', s.comments['c-' + name] || '']);
  }
  return rows.map(r => r.map(cell).join(',')).join('\\n') + '\\n';
}
function download() {
  const rater = document.getElementById('rater').value.trim();
  if (!rater) { alert('Please enter your name first.'); return; }
  const blob = new Blob([csvText()], {type: 'text/csv;charset=utf-8'});
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'ratings-' + rater.replace(/[^\\w-]+/g, '_') + '.csv';
  document.body.appendChild(a); a.click(); a.remove();
}
document.addEventListener('change', save);
document.addEventListener('input', save);
document.getElementById('download').addEventListener('click', download);
restore();
"""


def render_sheet(
    items: list[dict[str, Any]], sheet_id: str, scale: int, title: str, instructions: str
) -> str:
    """The rating page: static HTML for the content (escaped), a small script for the ratings."""
    e = html.escape
    parts = []
    for item in items:
        answers = []
        for a in item["answers"]:
            name = f"{item['key']}-{a['letter']}"
            radios = "".join(
                f'<label><input type="radio" name="r-{name}" value="{v}"> {v}</label>'
                for v in range(1, scale + 1)
            )
            answers.append(
                f'<div class="answer" data-item="{item["key"]}" data-output="{a["letter"]}">'
                f'<h3>Answer {a["letter"]}</h3><div class="text">{e(a["text"])}</div>'
                f'<p class="scale">Rating: {radios}</p>'
                f'<textarea name="c-{name}" placeholder="comment (optional)"></textarea></div>'
            )
        parts.append(
            f'<section class="item" id="{item["key"]}"><h2>Item {item["key"]}</h2>'
            f'<div class="prompt">{e(item["prompt"])}</div>{"".join(answers)}</section>'
        )
    data = {"sheet": sheet_id, "answers": sum(len(i["answers"]) for i in items)}
    # JSON inside <script>: "<" escaped so no "</script>" can end the element early.
    data_json = json.dumps(data).replace("<", "\\u003c")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(instructions)}</p>"
        f'<div id="bar"><label>Your name: <input id="rater" autocomplete="name"></label> '
        '<button id="download">Download ratings (CSV)</button><span id="status"></span></div>'
        f"{''.join(parts)}"
        f"<p><small>sheet {sheet_id}</small></p>"
        f'<script type="application/json" id="sheet-data">{data_json}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


# ---------------------------------------------------------------- import


def import_ratings(
    csv_files: Sequence[str | Path], mapping: str | Path | dict[str, Any]
) -> dict[str, Any]:
    """Unblind the ratings CSVs with the mapping and report (see the module docstring).

    mean_i ± t_{0.975, n−1} · s/√n per system over all its ratings (every rater, every item);
    kappa treats the ratings 1..scale as unordered categories."""
    if isinstance(mapping, dict):
        m = mapping
    else:
        try:
            m = json.loads(Path(mapping).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read the mapping: {exc}", file=str(mapping)) from None
    if not csv_files:
        raise ConfigError("no ratings files given", field="ratings")
    scale, items = int(m["scale"]), m["items"]
    ratings: dict[tuple[str, str, str], int] = {}  # (rater, item, letter) → rating
    missing = 0
    for path in csv_files:
        missing += _read_ratings(Path(path), m["sheet"], scale, items, ratings)
    if not ratings:
        raise DataError(
            "no ratings found in the files (all ratings blank?)", file=str(csv_files[0])
        )
    per_system: dict[str, list[int]] = {s: [] for s in m["systems"]}
    for (_, item, letter), value in ratings.items():
        per_system[items[item]["outputs"][letter]].append(value)
    raters = sorted({r for r, _, _ in ratings})
    return {
        "sheet": m["sheet"],
        "scale": [1, scale],
        "raters": raters,
        "ratings": len(ratings),
        "blank": missing,
        "confidence": "95% Student t interval of the mean",
        "systems": {s: mean_ci(v) if v else {"n": 0} for s, v in per_system.items()},
        "pairwise": _pairwise(ratings, items, m["systems"]),
        "agreement": agreement(ratings, raters, scale),
    }


def _read_ratings(
    path: Path,
    sheet: str,
    scale: int,
    items: dict[str, Any],
    ratings: dict[tuple[str, str, str], int],
) -> int:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", file=str(path)) from None
    reader = csv.DictReader(io.StringIO(text))
    for column in ("item", "output", "rating"):
        if column not in (reader.fieldnames or []):
            raise DataError("missing column", file=str(path), line=1, field=column)
    blank = 0
    for row in reader:
        line = reader.line_num
        if row.get("sheet") and row["sheet"].strip() != sheet:
            raise DataError(
                f"belongs to sheet {row['sheet']!r}, not {sheet!r} (wrong mapping?)",
                file=str(path),
                line=line,
                field="sheet",
            )
        item, letter, raw = ((row.get(k) or "").strip() for k in ("item", "output", "rating"))
        if not raw:
            blank += 1
            continue
        if item not in items:
            raise DataError(f"unknown item {item!r}", file=str(path), line=line, field="item")
        if letter not in items[item]["outputs"]:
            raise DataError(
                f"unknown answer {letter!r} for item {item}",
                file=str(path),
                line=line,
                field="output",
            )
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not value.is_integer() or not 1 <= value <= scale:
            raise DataError(
                f"must be a whole number from 1 to {scale}, got {raw!r}",
                file=str(path),
                line=line,
                field="rating",
            )
        rater = (row.get("rater") or "").strip() or path.stem
        ratings[(rater, item, letter)] = int(value)
    return blank


def _pairwise(
    ratings: dict[tuple[str, str, str], int], items: dict[str, Any], systems: list[str]
) -> dict[str, dict[str, int]]:
    """For each pair of systems: on how many (rater, item) one was rated higher, or equal."""
    by_rater_item: dict[tuple[str, str], dict[str, int]] = {}
    for (rater, item, letter), value in ratings.items():
        by_rater_item.setdefault((rater, item), {})[items[item]["outputs"][letter]] = value
    out = {}
    for a, b in combinations(systems, 2):
        tally = {f"{a} better": 0, f"{b} better": 0, "equal": 0}
        for scores in by_rater_item.values():
            if a in scores and b in scores:
                key = (
                    f"{a} better"
                    if scores[a] > scores[b]
                    else f"{b} better"
                    if scores[b] > scores[a]
                    else "equal"
                )
                tally[key] += 1
        out[f"{a} vs {b}"] = tally
    return out


def agreement(
    ratings: dict[tuple[str, str, str], int], raters: list[str], scale: int
) -> dict[str, Any] | None:
    """Cohen's kappa (2 raters, answers both rated) or Fleiss' kappa (3+, answers all rated)."""
    if len(raters) < 2:
        return None
    units: dict[tuple[str, str], dict[str, int]] = {}
    for (rater, item, letter), value in ratings.items():
        units.setdefault((item, letter), {})[rater] = value
    shared = [u for u in units.values() if all(r in u for r in raters)]
    if not shared:
        return {
            "method": "none",
            "kappa": None,
            "units": 0,
            "raters": len(raters),
            "note": "no answer rated by every rater",
        }
    if len(raters) == 2:
        a, b = raters
        kappa = cohen_kappa([u[a] for u in shared], [u[b] for u in shared])
        method = "cohen"
    else:
        table = category_table([list(u.values()) for u in shared], list(range(1, scale + 1)))
        kappa = fleiss_kappa(table)
        method = "fleiss"
    return {"method": method, "kappa": kappa, "units": len(shared), "raters": len(raters)}
