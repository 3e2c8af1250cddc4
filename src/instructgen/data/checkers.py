"""Automatic checks of a model's output: the checker vocabulary of instruction records.

A checker is a JSON object with a ``type``; `check(spec, output)` says whether an output passes.

==============  =========================================================================
type            fields
==============  =========================================================================
exact           value: str, ignore_case?: bool — output equals value (both stripped)
regex           pattern: str, mode?: "search" | "fullmatch", ignore_case?: bool
contains_all    values: [str], ignore_case?: bool — every value occurs in the output
json_schema     schema: object, equals?: any — output parses as JSON, validates, (equals)
numeric         value: number, tolerance?: number — the first number in the output
lines           min?: int, max?: int — count of non-empty lines
all / any       checks: [checker] — every / at least one sub-check passes
==============  =========================================================================

Chinese-aware: texts are compared after NFKC width folding, so full-width punctuation and
digits (``，：！３``) match their ASCII forms; a regex is tried on the output as written and
folded. ``fullmatch`` applies to the stripped output.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import jsonschema

from instructgen.errors import DataError

CHECKER_TYPES = ("exact", "regex", "contains_all", "json_schema", "numeric", "lines", "all", "any")

# Required and optional fields per type, with the JSON types they must have.
_FIELDS: dict[str, dict[str, tuple[bool, tuple[type, ...]]]] = {
    "exact": {"value": (True, (str,)), "ignore_case": (False, (bool,))},
    "regex": {"pattern": (True, (str,)), "mode": (False, (str,)), "ignore_case": (False, (bool,))},
    "contains_all": {"values": (True, (list,)), "ignore_case": (False, (bool,))},
    "json_schema": {"schema": (True, (dict, bool)), "equals": (False, (object,))},
    "numeric": {"value": (True, (int, float)), "tolerance": (False, (int, float))},
    "lines": {"min": (False, (int,)), "max": (False, (int,))},
    "all": {"checks": (True, (list,))},
    "any": {"checks": (True, (list,))},
}
_NUMBER = re.compile(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?")
_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.S)


def check(spec: dict[str, Any], output: str) -> bool:
    """True when `output` passes the checker `spec` (see the module docstring)."""
    validate_spec(spec)
    return _run(spec, output)


def _run(spec: dict[str, Any], output: str) -> bool:
    return _CHECKS[spec["type"]](spec, output)


def validate_spec(spec: Any, *, field: str = "checker") -> None:
    """Raise DataError (naming the bad field) unless `spec` is a well-formed checker."""
    if not isinstance(spec, dict):
        raise DataError(f"must be an object, got {type(spec).__name__}", field=field)
    kind = spec.get("type")
    if kind not in _FIELDS:
        raise DataError(
            f"unknown checker type {kind!r} (expected one of {', '.join(CHECKER_TYPES)})",
            field=f"{field}.type",
        )
    fields = _FIELDS[kind]
    for key in spec:
        if key != "type" and key not in fields:
            raise DataError(f"unknown field for a {kind!r} checker", field=f"{field}.{key}")
    for key, (required, types) in fields.items():
        if key not in spec:
            if required:
                raise DataError(f"a {kind!r} checker needs this field", field=f"{field}.{key}")
            continue
        value = spec[key]
        bad_bool = isinstance(value, bool) and bool not in types and object not in types
        if not isinstance(value, types) or bad_bool:
            names = "/".join(t.__name__ for t in types)
            raise DataError(f"must be {names}, got {type(value).__name__}", field=f"{field}.{key}")
    _validate_values(kind, spec, field)


def _validate_values(kind: str, spec: dict[str, Any], field: str) -> None:
    if kind == "regex":
        if spec.get("mode", "search") not in ("search", "fullmatch"):
            raise DataError("must be 'search' or 'fullmatch'", field=f"{field}.mode")
        try:
            re.compile(spec["pattern"])
        except re.error as exc:
            raise DataError(
                f"not a valid regular expression ({exc})", field=f"{field}.pattern"
            ) from None
    elif kind == "contains_all":
        for i, value in enumerate(spec["values"]):
            if not isinstance(value, str) or not value:
                raise DataError("must be a non-empty string", field=f"{field}.values[{i}]")
    elif kind == "json_schema":
        try:
            jsonschema.Draft202012Validator.check_schema(spec["schema"])
        except jsonschema.SchemaError as exc:
            raise DataError(
                f"not a valid JSON schema ({exc.message})", field=f"{field}.schema"
            ) from None
    elif kind == "numeric":
        if spec.get("tolerance", 0) < 0:
            raise DataError("must not be negative", field=f"{field}.tolerance")
    elif kind == "lines":
        low, high = spec.get("min", 0), spec.get("max")
        if low < 0 or (high is not None and high < low):
            raise DataError(f"need 0 <= min <= max, got min={low} max={high}", field=field)
    elif kind in ("all", "any"):
        if not spec["checks"]:
            raise DataError("must hold at least one checker", field=f"{field}.checks")
        for i, sub in enumerate(spec["checks"]):
            validate_spec(sub, field=f"{field}.checks[{i}]")


# ----------------------------------------------------------------------------------------------
# The checks


def fold(text: str) -> str:
    """NFKC width folding: full-width ``，３Ａ`` become ``,3A``; CJK characters stay as they are."""
    return unicodedata.normalize("NFKC", text)


def _case(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _exact(spec: dict[str, Any], output: str) -> bool:
    ic = spec.get("ignore_case", False)
    return _case(fold(output.strip()), ic) == _case(fold(spec["value"].strip()), ic)


def _regex(spec: dict[str, Any], output: str) -> bool:
    flags = re.IGNORECASE if spec.get("ignore_case", False) else 0
    pattern = re.compile(spec["pattern"], flags)
    match = pattern.fullmatch if spec.get("mode", "search") == "fullmatch" else pattern.search
    text = output.strip() if spec.get("mode") == "fullmatch" else output
    return match(text) is not None or match(fold(text)) is not None


def _contains_all(spec: dict[str, Any], output: str) -> bool:
    ic = spec.get("ignore_case", False)
    text = _case(fold(output), ic)
    return all(_case(fold(value), ic) in text for value in spec["values"])


def _json_schema(spec: dict[str, Any], output: str) -> bool:
    text = output.strip()
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return False
    if not jsonschema.Draft202012Validator(spec["schema"]).is_valid(value):
        return False
    return "equals" not in spec or _same_json(value, spec["equals"])


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality: like ==, but true and 1 differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return a == b


def first_number(text: str) -> float | None:
    """The first number written in `text` (``1,234.5`` reads as 1234.5), or None."""
    match = _NUMBER.search(fold(text))
    return float(match.group().replace(",", "")) if match else None


def _numeric(spec: dict[str, Any], output: str) -> bool:
    """|x - value| <= tolerance, x the first number in the output."""
    x = first_number(output)
    return x is not None and abs(x - spec["value"]) <= spec.get("tolerance", 0) + 1e-9


def count_lines(text: str) -> int:
    """The number of lines holding something other than whitespace."""
    return sum(1 for line in text.splitlines() if line.strip())


def _lines(spec: dict[str, Any], output: str) -> bool:
    n = count_lines(output)
    return spec.get("min", 0) <= n and ("max" not in spec or n <= spec["max"])


_CHECKS = {
    "exact": _exact,
    "regex": _regex,
    "contains_all": _contains_all,
    "json_schema": _json_schema,
    "numeric": _numeric,
    "lines": _lines,
    "all": lambda spec, output: all(_run(s, output) for s in spec["checks"]),
    "any": lambda spec, output: any(_run(s, output) for s in spec["checks"]),
}


# ----------------------------------------------------------------------------------------------
# Constructors, so that task definitions read as what they check


def exact(value: str, *, ignore_case: bool = False) -> dict[str, Any]:
    return {"type": "exact", "value": value, **({"ignore_case": True} if ignore_case else {})}


def regex(pattern: str, *, fullmatch: bool = False, ignore_case: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "regex", "pattern": pattern}
    if fullmatch:
        spec["mode"] = "fullmatch"
    if ignore_case:
        spec["ignore_case"] = True
    return spec


def contains_all(values: list[str], *, ignore_case: bool = False) -> dict[str, Any]:
    return {
        "type": "contains_all",
        "values": list(values),
        **({"ignore_case": True} if ignore_case else {}),
    }


def json_schema(schema: dict[str, Any], *, equals: Any = None) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "schema": schema,
        **({"equals": equals} if equals is not None else {}),
    }


def numeric(value: float, *, tolerance: float = 0) -> dict[str, Any]:
    return {"type": "numeric", "value": value, **({"tolerance": tolerance} if tolerance else {})}


def lines(*, min: int | None = None, max: int | None = None) -> dict[str, Any]:  # noqa: A002
    spec: dict[str, Any] = {"type": "lines"}
    if min is not None:
        spec["min"] = min
    if max is not None:
        spec["max"] = max
    return spec


def all_of(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "all", "checks": list(checks)}


def any_of(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "any", "checks": list(checks)}
