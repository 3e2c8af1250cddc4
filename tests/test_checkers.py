"""The checker vocabulary: each type accepts what it should, rejects what it should, and malformed
specs raise DataError naming the field."""

from __future__ import annotations

import pytest

from instructgen.data import checkers as C
from instructgen.errors import DataError, UserError


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        (C.exact("42"), ["42", "  42\n", "４２"], ["43", "42.", "the answer is 42"]),
        (C.exact("HELLO"), ["HELLO"], ["hello", "Hello"]),
        (C.exact("Even", ignore_case=True), ["even", "EVEN "], ["odd", "even number"]),
        (C.regex(r"\d{3}-\d{4}"), ["call 555-1234 now"], ["555 1234", ""]),
        (C.regex(r"a, b", fullmatch=True), ["a, b", " a, b\n", "a， b"], ["a, b, c", "xa, b"]),
        (C.regex("sorry", ignore_case=True), ["We are SORRY."], ["We apologize."]),
        (C.contains_all(["张伟", "2024"]), ["张伟：2024年", "2024，张伟"], ["张伟", "李娜 2024"]),
        (C.contains_all(["Paris"], ignore_case=True), ["PARIS!"], ["Berlin"]),
        (C.contains_all(["你好，世界"]), ["你好,世界"], ["你好世界"]),
        (
            C.numeric(17),
            ["17", "答案是17。", "17.0", "= 17 apples", "１７"],
            ["71", "1 7", "18", "", "seventeen"],
        ),
        (C.numeric(1234), ["1,234"], ["1.234"]),
        (C.numeric(-3), ["-3"], ["3"]),
        (C.numeric(2.5, tolerance=0.1), ["2.45", "2.6"], ["2.7"]),
        (C.lines(min=2, max=3), ["a\nb", "a\n\nb\n c\n"], ["a", "a\nb\nc\nd", ""]),
        (C.lines(max=1), ["one line", ""], ["one\ntwo"]),
        (
            C.all_of(C.contains_all(["spring"], ignore_case=True), C.lines(min=4, max=4)),
            ["Spring\nb\nc\nd"],
            ["Spring\nb\nc", "a\nb\nc\nd"],
        ),
        (C.any_of(C.exact("yes"), C.exact("是")), ["yes", "是"], ["no", "否"]),
    ],
)
def test_accepts_and_rejects(spec, good, bad):
    C.validate_spec(spec)
    for output in good:
        assert C.check(spec, output), (spec, output)
    for output in bad:
        assert not C.check(spec, output), (spec, output)


def test_json_schema_parses_validates_and_compares():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    spec = C.json_schema(schema, equals={"name": "张伟", "age": 30})
    assert C.check(spec, '{"name": "张伟", "age": 30}')
    assert C.check(spec, '  {"age":30,"name":"张伟"}\n')
    assert C.check(spec, '```json\n{"name": "张伟", "age": 30}\n```')
    assert not C.check(spec, '{"name": "张伟", "age": 31}')
    assert not C.check(spec, '{"name": "张伟", "age": "30"}')  # fails the schema
    assert not C.check(spec, '{"name": "张伟"')  # not JSON
    assert not C.check(spec, "name: 张伟, age: 30")
    loose = C.json_schema(schema)
    assert C.check(loose, '{"name": "x", "age": 1}')
    assert not C.check(loose, '{"name": "x"}')
    assert not C.check(C.json_schema({"type": "integer"}, equals=1), "true")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("exact", "checker"),
        ({"type": "fuzzy"}, "checker.type"),
        ({"value": "x"}, "checker.type"),
        ({"type": "exact"}, "checker.value"),
        ({"type": "exact", "value": 3}, "checker.value"),
        ({"type": "exact", "value": "x", "case": True}, "checker.case"),
        ({"type": "regex", "pattern": "("}, "checker.pattern"),
        ({"type": "regex", "pattern": "a", "mode": "match"}, "checker.mode"),
        ({"type": "contains_all", "values": "abc"}, "checker.values"),
        ({"type": "contains_all", "values": ["a", ""]}, "checker.values[1]"),
        ({"type": "numeric", "value": "3"}, "checker.value"),
        ({"type": "numeric", "value": True}, "checker.value"),
        ({"type": "numeric", "value": 3, "tolerance": -1}, "checker.tolerance"),
        ({"type": "json_schema", "schema": {"type": "nonsense"}}, "checker.schema"),
        ({"type": "lines", "min": 3, "max": 2}, "checker"),
        ({"type": "all", "checks": []}, "checker.checks"),
        (
            {"type": "any", "checks": [{"type": "exact", "value": "a"}, {"type": "numeric"}]},
            "checker.checks[1].value",
        ),
    ],
)
def test_malformed_specs_raise_data_error_naming_the_field(spec, field):
    with pytest.raises(DataError) as info:
        C.validate_spec(spec)
    assert info.value.field == field
    assert isinstance(info.value, UserError)
    with pytest.raises(DataError):
        C.check(spec, "anything")
