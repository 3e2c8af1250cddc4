"""A generated, labelled PII set (zh/en) and the precision/recall of `find_pii` on it.

Each record mixes PII values of every kind with look-alikes that are not PII (an ID with a wrong
check digit, a Luhn-invalid card number, order numbers, timestamps, version strings, prices),
so precision is measured, not just recall. The set is written by the same hands as the
detectors, so read its scores as a regression check of the formats listed here, not as an
estimate of recall on real text.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from instructgen.safety.pii import PII_KINDS, cn_id_check_digit, find_pii, luhn_valid

_NAMES = ["li.wei", "zhang_min", "wang.fang", "alice", "bob.smith", "carol99", "d.jones", "eve"]
_DOMAINS = ["example.com", "mail.example.cn", "qq.com", "163.com", "corp.example.org"]
_REGIONS = ["110105", "310104", "440305", "330106", "510107", "420111"]
_ROADS_ZH = ["建国路", "中山路", "文三路", "南京东路", "人民大道", "解放街"]
_CITIES_ZH = ["北京市朝阳区", "上海市黄浦区", "杭州市西湖区", "深圳市南山区", ""]
_STREETS_EN = ["Maple Street", "Oak Avenue", "Sunset Blvd", "Main St", "Park Road", "Elm Lane"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _cn_id(rng: random.Random, valid: bool = True) -> str:
    body = (
        rng.choice(_REGIONS)
        + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + _digits(rng, 3)
    )
    check = cn_id_check_digit(body)
    if not valid:
        check = rng.choice([c for c in "0123456789X" if c != check])
    return body + check


def _card(rng: random.Random, valid: bool = True) -> str:
    body = rng.choice(["4", "51", "55", "62", "37"])
    length = 15 if body == "37" else 16
    body += _digits(rng, length - 1 - len(body))
    check = next(d for d in "0123456789" if luhn_valid(body + d) == valid)
    number = body + check
    if rng.random() < 0.5 and length == 16:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _phone(rng: random.Random) -> str:
    mobile = rng.choice("3456789") + _digits(rng, 9)
    return rng.choice(
        [
            "1" + mobile,
            f"+86 1{mobile}",
            f"1{mobile[:2]}-{mobile[2:6]}-{mobile[6:]}",
            f"({rng.randint(2, 9)}{_digits(rng, 2)}) {rng.randint(2, 9)}{_digits(rng, 2)}-{_digits(rng, 4)}",
            f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
        ]
    )


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return "2001:db8:" + ":".join(f"{rng.randint(1, 0xFFFF):x}" for _ in range(6))


def _value(rng: random.Random, kind: str) -> str:
    if kind == "email":
        return f"{rng.choice(_NAMES)}@{rng.choice(_DOMAINS)}"
    if kind == "phone":
        return _phone(rng)
    if kind == "id_cn":
        return _cn_id(rng)
    if kind == "card":
        return _card(rng)
    if kind == "ip":
        return _ip(rng)
    if kind == "bank_account":
        return _digits(rng, rng.randint(10, 19))
    if kind == "address":
        if rng.random() < 0.5:
            return f"{rng.randint(1, 9999)} {rng.choice(_STREETS_EN)}"
        return f"{rng.choice(_CITIES_ZH)}{rng.choice(_ROADS_ZH)}{rng.randint(1, 999)}号"
    if kind == "url_credentials":
        return f"https://{rng.choice(_NAMES).replace('.', '')}:{_digits(rng, 6)}pw@db.example.com"
    if kind == "secret":
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "sk-" + "".join(rng.choice(alphabet) for _ in range(32))
    if kind == "dob":
        y, m, d = rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
        return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{y}年{m}月{d}日"])
    if kind == "ssn":
        return f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    raise ValueError(kind)


# A template's {v} is where the value goes; labels that the detectors need are part of it.
_TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "email": (["Please email me at {v} today."], ["我的邮箱是{v}，请联系。"]),
    "phone": (["You can call me on {v} after 6pm."], ["电话：{v}，随时联系。"]),
    "id_cn": (["My Chinese ID number is {v}."], ["身份证号码{v}已登记。"]),
    "card": (["Charge the card {v} please."], ["请用这张卡{v}付款。"]),
    "ip": (["The request came from {v} last night."], ["登录地址是{v}。"]),
    "bank_account": (["Wire it to account number {v} by Friday."], ["请汇款到银行账号：{v}。"]),
    "address": (["Ship it to {v}, thanks."], ["请寄到{v}，谢谢。"]),
    "url_credentials": (["Connect with {v}/app."], ["数据库连接串 {v}/app 不要外传。"]),
    "secret": (["export OPENAI_API_KEY={v}"], ["我的密钥是 {v}，请保密。"]),
    "dob": (["Date of birth: {v}."], ["出生日期：{v}。"]),
    "ssn": (["SSN {v} on file."], ["他的美国社保号 {v} 已核实。"]),
}


def _distractor(rng: random.Random, lang: str) -> str:
    en = lang == "en"
    choice = rng.randrange(7)
    if choice == 0:
        v = _digits(rng, 14)
        return f"Order number {v} has shipped." if en else f"订单号{v}已发货。"
    if choice == 1:
        v = _cn_id(rng, valid=False)
        return f"Reference {v} is invalid." if en else f"参考编码{v}无效。"
    if choice == 2:
        v = _card(rng, valid=False)
        return f"Tracking code {v} was scanned." if en else f"追踪码 {v} 已扫描。"
    if choice == 3:
        ts = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        return (
            f"Logged at {ts} (epoch {rng.randint(1_600_000_000, 1_800_000_000)})."
            if en
            else f"记录时间 {ts}。"
        )
    if choice == 4:
        v = ".".join(str(rng.randint(0, 20)) for _ in range(rng.choice([3, 4])))
        return f"Upgrade to version {v} now." if en else f"请升级到版本 {v}。"
    if choice == 5:
        return (
            f"It costs ${rng.randint(1, 9)},{_digits(rng, 3)}.99."
            if en
            else f"价格 {rng.randint(100, 99999)} 元。"
        )
    return "The weather is nice today." if en else "今天天气不错。"


def labelled_pii_set(n: int = 300, *, seed: int = 0) -> list[dict[str, Any]]:
    """`n` records {"text", "lang", "spans": [{"kind", "start", "end"}]}, deterministic in seed."""
    rng = random.Random(seed)
    kinds = list(PII_KINDS)
    records = []
    for i in range(n):
        lang = "en" if i % 2 == 0 else "zh"
        sep = " " if lang == "en" else ""
        parts, spans, pos = [], [], 0
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.7:
                kind = kinds[rng.randrange(len(kinds))]
                template = rng.choice(_TEMPLATES[kind][0 if lang == "en" else 1])
                value = _value(rng, kind)
                head = template.split("{v}")[0]
                start = pos + len(head)
                spans.append({"kind": kind, "start": start, "end": start + len(value)})
                piece = template.replace("{v}", value)
            else:
                piece = _distractor(rng, lang)
            parts.append(piece)
            pos += len(piece) + len(sep)
        records.append({"text": sep.join(parts), "lang": lang, "spans": spans})
    return records


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def score_pii(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact-span precision = TP/(TP+FP), recall = TP/(TP+FN), per kind and micro-averaged;
    plus char_recall = covered gold characters / gold characters (any kind), the share of PII
    characters a redaction would hide."""
    counts: dict[str, Counter] = {k: Counter() for k in PII_KINDS}
    covered = total = 0
    for rec in records:
        gold = {(s["kind"], s["start"], s["end"]) for s in rec["spans"]}
        found = find_pii(rec["text"])
        pred = {(s.kind, s.start, s.end) for s in found}
        for kind, *_ in gold & pred:
            counts[kind]["tp"] += 1
        for kind, *_ in pred - gold:
            counts[kind]["fp"] += 1
        for kind, *_ in gold - pred:
            counts[kind]["fn"] += 1
        hidden = set()
        for s in found:
            hidden.update(range(s.start, s.end))
        for _, start, end in gold:
            total += end - start
            covered += sum(1 for i in range(start, end) if i in hidden)
    per_kind = {k: _prf(c["tp"], c["fp"], c["fn"]) for k, c in counts.items()}
    micro = _prf(*(sum(c[x] for c in counts.values()) for x in ("tp", "fp", "fn")))
    return {
        "records": len(records),
        "micro": micro,
        "char_recall": round(covered / total, 4) if total else 1.0,
        "per_kind": per_kind,
    }
