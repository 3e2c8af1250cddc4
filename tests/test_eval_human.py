"""Human evaluation: a blinded, self-contained rating sheet out; ratings in, unblinded, with
means, confidence intervals and inter-rater agreement. The page's script runs in a real
headless Chromium when one is installed."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import subprocess

import pytest

from instructgen.errors import ConfigError, DataError
from instructgen.evaluate.human import export, import_ratings
from instructgen.evaluate.stats import cohen_kappa, mean_ci

SYSTEMS = {
    "base-model": [
        {"id": "1", "prompt": "Write a haiku.", "output": "base haiku"},
        {"id": "2", "prompt": "写一首诗。", "output": "base 诗"},
        {"id": "3", "prompt": "Say <hi>", "output": "<b>base</b> & co"},
    ],
    "tuned-model": [
        {"id": "1", "prompt": "Write a haiku.", "output": "tuned haiku"},
        {"id": "2", "prompt": "写一首诗。", "output": "tuned 诗"},
        {"id": "3", "prompt": "Say <hi>", "output": 'tuned "quoted", with comma'},
        {"id": "4", "prompt": "only here", "output": "x"},
    ],
}


def _template_rows(sheet_dir):
    text = (sheet_dir / "ratings_template.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _write_ratings(path, rows, rater, rate):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "rater": rater, "rating": rate(row)})
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def test_export_writes_a_blinded_self_contained_sheet(tmp_path):
    info = export(SYSTEMS, tmp_path, seed=7)
    assert info["items"] == 3 and info["skipped_items"] == 0  # item 4: only one system has it
    page = (tmp_path / "sheet" / "rating_sheet.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://|<link|\bsrc=", page)  # no external assets
    assert "base-model" not in page and "tuned-model" not in page  # blinded
    assert html.escape("<b>base</b> & co") in page and "<b>base</b>" not in page
    assert "Download ratings (CSV)" in page
    assert not (tmp_path / "sheet" / "mapping.json").exists()  # kept apart from the sheet
    mapping = json.loads((tmp_path / "mapping.json").read_text(encoding="utf-8"))
    assert sorted(mapping["systems"]) == sorted(SYSTEMS) and mapping["sheet"] == info["sheet_id"]
    assert sorted(v["id"] for v in mapping["items"].values()) == ["1", "2", "3"]
    rows = _template_rows(tmp_path / "sheet")
    assert len(rows) == 6 and {r["output"] for r in rows} == {"A", "B"}

    same = export(SYSTEMS, tmp_path / "again", seed=7)
    assert (tmp_path / "again" / "mapping.json").read_text() == (
        tmp_path / "mapping.json"
    ).read_text()
    assert same["sheet_id"] == info["sheet_id"]

    def items_for(seed):
        export(SYSTEMS, tmp_path / f"s{seed}", seed=seed)
        return json.loads((tmp_path / f"s{seed}" / "mapping.json").read_text())["items"]

    orders = {json.dumps(items_for(s), sort_keys=True) for s in range(6)}
    assert len(orders) > 1  # the seed shuffles items and answers

    with pytest.raises(ConfigError, match="two systems"):
        export({"only": SYSTEMS["base-model"]}, tmp_path / "x")


def _unblind(mapping_file):
    mapping = json.loads(mapping_file.read_text(encoding="utf-8"))
    return lambda row: mapping["items"][row["item"]]["outputs"][row["output"]]


def test_import_reports_means_intervals_and_cohen_kappa(tmp_path):
    export(SYSTEMS, tmp_path, seed=1)
    rows = _template_rows(tmp_path / "sheet")
    system = _unblind(tmp_path / "mapping.json")
    # rater 1: tuned 5, base 2; rater 2 agrees except on one base answer (3)
    r1 = _write_ratings(
        tmp_path / "ann.csv", rows, "ann", lambda r: 5 if system(r) == "tuned-model" else 2
    )
    first_base = next(r for r in rows if system(r) == "base-model")
    r2 = _write_ratings(
        tmp_path / "bob.csv",
        rows,
        "bob",
        lambda r: 3 if r is first_base else (5 if system(r) == "tuned-model" else 2),
    )
    report = import_ratings([r1, r2], tmp_path / "mapping.json")
    assert report["raters"] == ["ann", "bob"] and report["ratings"] == 12
    assert report["systems"]["tuned-model"]["mean"] == 5.0
    assert report["systems"]["base-model"] == pytest.approx(mean_ci([2, 2, 2, 2, 2, 3]))
    ann = [5 if system(r) == "tuned-model" else 2 for r in rows]
    bob = [3 if r is first_base else a for r, a in zip(rows, ann)]
    assert report["agreement"]["method"] == "cohen"
    assert report["agreement"]["kappa"] == pytest.approx(cohen_kappa(ann, bob))
    assert report["pairwise"]["base-model vs tuned-model"] == {
        "base-model better": 0,
        "tuned-model better": 6,
        "equal": 0,
    }


def test_three_raters_use_fleiss_kappa_and_blank_ratings_are_skipped(tmp_path):
    export(SYSTEMS, tmp_path, seed=2)
    rows = _template_rows(tmp_path / "sheet")
    files = [_write_ratings(tmp_path / f"{n}.csv", rows, n, lambda r: 4) for n in ("a", "b", "c")]
    _write_ratings(tmp_path / "d.csv", rows, "", lambda r: "")  # an untouched template
    report = import_ratings([*files, tmp_path / "d.csv"], tmp_path / "mapping.json")
    assert report["agreement"] == {"method": "fleiss", "kappa": 1.0, "units": 6, "raters": 3}
    assert report["blank"] == 6


def test_bad_ratings_name_file_line_and_field(tmp_path):
    export(SYSTEMS, tmp_path, seed=3)
    rows = _template_rows(tmp_path / "sheet")
    bad = _write_ratings(tmp_path / "bad.csv", rows, "x", lambda r: 9 if r is rows[2] else 3)
    with pytest.raises(DataError) as err:
        import_ratings([bad], tmp_path / "mapping.json")
    assert err.value.line == 4 and err.value.field == "rating" and "1 to 5" in str(err.value)
    other = tmp_path / "other"
    export(SYSTEMS, other, seed=4)
    good = _write_ratings(tmp_path / "good.csv", rows, "x", lambda r: 3)
    with pytest.raises(DataError, match="wrong mapping"):
        import_ratings([good], other / "mapping.json")


CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)

# Appended to a copy of the page: a rater picks ratings, then the page's own csvText() is
# written into the DOM, which --dump-dom prints.
_RATER_SCRIPT = """<script>
document.getElementById('rater').value = 'chrome rater';
const boxes = Array.from(document.querySelectorAll('[data-item]'));
boxes.forEach((box, i) => {
  box.querySelector(`input[value="${(i % 5) + 1}"]`).checked = true;
  if (i === 0) box.querySelector('textarea').value = 'says "hi", twice';
});
save();
const out = document.createElement('pre'); out.id = 'csv-out'; out.textContent = csvText();
document.body.appendChild(out);
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed")
def test_the_page_script_produces_csv_that_imports(tmp_path):
    export(SYSTEMS, tmp_path, seed=5)
    page = (tmp_path / "sheet" / "rating_sheet.html").read_text(encoding="utf-8")
    driven = tmp_path / "driven.html"
    driven.write_text(page.replace("</body>", _RATER_SCRIPT), encoding="utf-8")
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            driven.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    text = html.unescape(re.search(r'<pre id="csv-out">(.*?)</pre>', dom, re.S).group(1))
    (tmp_path / "from_browser.csv").write_text(text, encoding="utf-8")
    report = import_ratings([tmp_path / "from_browser.csv"], tmp_path / "mapping.json")
    assert report["raters"] == ["chrome rater"] and report["ratings"] == 6
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["rating"]) for r in rows] == [1, 2, 3, 4, 5, 1]
    assert rows[0]["comment"] == 'says "hi", twice'
