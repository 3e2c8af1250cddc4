"""The built-in IFEval-style prompt set: 30 English and 30 Chinese tasks, each with 1–3
verifiable instructions whose wording is rendered from the instruction's kwargs, so a prompt
always states exactly what its checks verify. The tasks and the instruction sentences live in
data/ifeval_prompts.json."""

from __future__ import annotations

from typing import Any

from instructgen.package_data import load_json

_TABLES = load_json("instructgen.evaluate", "data", "ifeval_prompts.json")

# Short names used in the tasks -> IFEval instruction ids.
IDS: dict[str, str] = _TABLES["ids"]
# Short name -> the instruction's sentence, with {kwargs} slots.
_EN: dict[str, str] = _TABLES["instructions"]["en"]
_ZH: dict[str, str] = _TABLES["instructions"]["zh"]

_RELATION_ZH = {"at least": "至少", "at most": "不超过", "less than": "少于", "more than": "多于"}
_LANGUAGE = {"en": {"en": "English", "zh": "Chinese"}, "zh": {"en": "英文", "zh": "中文"}}


def describe(name: str, kwargs: dict[str, Any], lang: str) -> str:
    """The instruction sentence for short name `name` with `kwargs`, in `lang`."""
    values: dict[str, Any] = dict(kwargs)
    sep = ", " if lang == "en" else "、"
    for key in ("keywords", "forbidden_words"):
        if key in values:
            values[key] = sep.join(values[key])
    if lang == "zh" and "relation" in values:
        values["relation"] = _RELATION_ZH[values["relation"]]
    if "language" in values:
        values["language"] = _LANGUAGE[lang][values["language"]]
    return (_EN if lang == "en" else _ZH)[name].format(**values)


_Spec = tuple[str, list[tuple[str, dict[str, Any]]]]


def _tasks(lang: str) -> list[_Spec]:
    """(task, [(short name, kwargs), ...]) for each task of `lang`."""
    return [(t["task"], list(t["instructions"].items())) for t in _TABLES["tasks"][lang]]


_EN_TASKS: list[_Spec] = _tasks("en")
_ZH_TASKS: list[_Spec] = _tasks("zh")


def build_prompts() -> list[dict[str, Any]]:
    """Render the table into IFEval-style records (key, prompt, lang, instruction_ids, kwargs),
    scored by the bilingual rules (ifeval.py): its Chinese prompts count 字 and its relations
    include "at most" and "more than", which the official checker has no judgement for."""
    records = []
    for lang, tasks in (("en", _EN_TASKS), ("zh", _ZH_TASKS)):
        joiner = " " if lang == "en" else ""
        for i, (task, instructions) in enumerate(tasks, 1):
            records.append(
                {
                    "key": f"{lang}-{i:03d}",
                    "prompt": joiner.join(
                        [task, *(describe(name, kw, lang) for name, kw in instructions)]
                    ),
                    "lang": lang,
                    "instruction_ids": [IDS[name] for name, _ in instructions],
                    "kwargs": [dict(kw) for _, kw in instructions],
                    "rules": "bilingual",
                }
            )
    return records
