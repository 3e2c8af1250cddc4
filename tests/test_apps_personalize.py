"""Personalized content in bulk: profile/catalogue loading, per-output checks, PII redaction in
the output file, resuming — against a scripted model behind a real OpenAI-compatible server
(thread pool) and a real local model directory (batches)."""

from __future__ import annotations

import json
import re

import pytest

from instructgen.apps import load_catalog, load_profiles, personalize
from instructgen.errors import DataError
from instructgen.inference import load
from tests.apps_scripted import ScriptedLLM, scripted_server, wide_model_dir

PROFILES = [
    {"id": "u1", "name": "Ada", "interests": ["tea"], "city": "Leeds"},
    {"id": "u2", "name": "Bo", "interests": "hiking;tea", "exclude": "Trail Boots"},
    {"id": "u3", "name": "李雷", "interests": ["咖啡"], "city": "杭州"},
    {"id": "u4", "name": "Cy", "interests": ["tea"], "exclude": ["jade"]},
    {"id": "u5", "name": "Di", "interests": ["tea"]},
]
CATALOG = (
    "name,category\nJade Teapot,tea\nTrail Boots,hiking\nTrekking Poles,hiking\n手冲咖啡壶,咖啡\n"
)


def writer(messages):
    """Recommends the first catalogue line, greets by name; Di's answer forgets the name."""
    ask = messages[0]["content"]
    name = re.search(r"(?:name |姓名)([^,，.。\n]+)", ask).group(1)
    item = re.search(r"^1\. ([^(（]+)", ask, re.M)
    pick = item.group(1).strip() if item else "something"
    if name == "Di":
        return f"Try the {pick}! Questions? Mail help@shop.example.com"
    return f"{name}, try the {pick}! Questions? Mail help@shop.example.com"


@pytest.fixture()
def files(tmp_path):
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROFILES), encoding="utf-8"
    )
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    return load_profiles(profiles), load_catalog(catalog), tmp_path / "out.jsonl"


@pytest.fixture(scope="module")
def llm():
    with scripted_server(ScriptedLLM(writer)) as url:
        yield load(url)


def read(path):
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_profiles_load_and_errors(files, tmp_path):
    profiles, catalog, _ = files
    assert profiles[1].interests == ["hiking", "tea"] and profiles[1].exclude == ["Trail Boots"]
    assert profiles[2].lang == "zh" and catalog[3].category == "咖啡"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Ann\n2,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv:3: field 'name'"):
        load_profiles(bad)


def test_recommend_checks_and_redacts_every_output(llm, files):
    profiles, catalog, out = files
    summary = personalize(
        llm, profiles, "recommend", out, catalog=catalog, workers=3, progress=False
    )
    assert summary == {
        "task": "recommend",
        "profiles": 5,
        "skipped_done": 0,
        "generated": 5,
        "passed": 3,
        "failed": 2,
        "out": str(out),
    }
    records = read(out)
    assert records["u1"]["passed"] and records["u1"]["check"]["items"] == ["Jade Teapot"]
    assert records["u3"]["passed"] and "手冲咖啡壶" in records["u3"]["output"]
    assert records["u2"]["passed"] and "Trail Boots" not in records["u2"]["output"]
    assert records["u4"]["check"]["excluded"] == ["jade"]  # the only tea item is excluded
    assert not records["u4"]["passed"]
    assert not records["u5"]["check"]["mentions_name"]
    text = out.read_text(encoding="utf-8")
    assert "help@shop.example.com" not in text and "[EMAIL]" in text


def test_resume_skips_finished_profiles_and_repairs_a_torn_line(llm, files):
    profiles, catalog, out = files
    personalize(llm, profiles[:3], "marketing", out, catalog=catalog, progress=False)
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"id": "u4", "outp')  # a run killed mid-write
    summary = personalize(llm, profiles, "marketing", out, catalog=catalog, progress=False)
    assert (summary["skipped_done"], summary["generated"]) == (3, 2)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["u1", "u2", "u3", "u4", "u5"]
    again = personalize(llm, profiles, "marketing", out, catalog=catalog, progress=False)
    assert again["generated"] == 0


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory, tokenizer_dir):
    with load(wide_model_dir(tmp_path_factory, tokenizer_dir)) as llm:
        yield llm


def test_local_model_directory_batches(local_llm, files):
    profiles, catalog, out = files
    summary = personalize(
        local_llm,
        profiles,
        "recommend",
        out,
        catalog=catalog,
        batch_size=2,
        max_tokens=6,
        progress=False,
    )
    assert summary["generated"] == 5 and summary["passed"] + summary["failed"] == 5
    assert set(read(out)) == {"u1", "u2", "u3", "u4", "u5"}


def test_cli_against_a_real_server_and_a_real_model_directory(
    llm, tmp_path, tmp_path_factory, tokenizer_dir
):
    """`instructgen app personalize` and `app write draft` in subprocesses: the scripted model's
    URL (content checks) and a real local model directory (plumbing)."""
    from tests.conftest import run_cli

    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROFILES), encoding="utf-8"
    )
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    out = tmp_path / "served.jsonl"
    args = [
        "app",
        "personalize",
        "--profiles",
        str(profiles),
        "--catalog",
        str(catalog),
        "--task",
        "recommend",
        "--quiet",
    ]
    result = run_cli(*args, "--model", llm.base_url, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    rows = read(out)
    assert len(rows) == len(PROFILES) and summary
    assert "help@shop.example.com" not in out.read_text(encoding="utf-8")  # redacted
    local = wide_model_dir(tmp_path_factory, tokenizer_dir)
    result = run_cli(
        *args, "--model", str(local), "--out", str(tmp_path / "local.jsonl"), "--max-tokens", "8"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(read(tmp_path / "local.jsonl")) == len(PROFILES)
    draft = run_cli(
        "app",
        "write",
        "draft",
        "--model",
        str(local),
        "--topic",
        "spring",
        "--length",
        "5-400",
        "--attempts",
        "1",
        "--json",
    )
    assert draft.returncode in (0, 1), draft.stderr[
        -2000:
    ]  # 1: the random model missed its constraints
    assert "attempts" in json.loads(draft.stdout)
