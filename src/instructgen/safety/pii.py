"""PII and secret detection and redaction for Chinese and English text (regular expressions).

Every detector has a kind (`email`, `phone`, ...) and finds candidate spans with a regular
expression; the ones whose format carries a checksum are verified (Chinese resident ID: ISO 7064
MOD 11-2; bank cards: Luhn; IBAN: mod 97), so an 18-digit order number or a 16-digit tracking
number is not taken for an ID or a card. Numbers with no structure of their own (bank accounts,
dates of birth) are found only after a label ("账号", "account number", "出生日期", "DOB").

Boundaries are ASCII-only on purpose: Python's `\\b` treats Chinese characters as word
characters, so `\\b` would miss the phone number in "电话13812345678".

Known limits: street addresses are found only in two clear shapes (English "123 Main Street",
Chinese "...路/街 88 号"); names of people are not detected; a phone or card number written
in words, or split in odd ways, is missed.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from instructgen.errors import ConfigError
from instructgen.text import CJK_BASIC


@dataclass(frozen=True)
class Span:
    """One finding: `text[start:end] == self.text`."""

    kind: str
    start: int
    end: int
    text: str

    @property
    def tag(self) -> str:
        return "[" + self.kind.upper() + "]"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "end": self.end, "text": self.text}


# ---------------------------------------------------------------------------------- checksums

_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2


def cn_id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2: c = (12 − Σ a_i·W_i mod 11) mod 11, W_i = 2^(17−i) mod 11; 10 → "X"."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    c = (12 - total % 11) % 11
    return "X" if c == 10 else str(c)


def valid_cn_id(number: str) -> bool:
    """An 18-character resident ID: region, a real birth date, sequence, check digit."""
    number = number.upper()
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", number):
        return False
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not datetime.date(1800, 1, 1) <= born <= datetime.date.today():
        return False
    return cn_id_check_digit(number[:17]) == number[17]


def luhn_valid(digits: str) -> bool:
    """Luhn: double every second digit from the right (minus 9 when > 9); valid iff Σ ≡ 0 mod 10."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_ID_SHAPE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{4}")


def _valid_card(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    # Issuer prefixes of the major networks: Visa 4, Mastercard 51-55/22-27, Amex 34/37,
    # Diners/JCB 30/35/36/38, Discover/UnionPay 6.
    return (
        13 <= len(digits) <= 19
        and re.match(r"4|5[1-5]|2[2-7]|3[0-9]|6", digits) is not None
        and luhn_valid(digits)
        and len(set(re.findall(r"[ -]", value))) <= 1
        and not _ID_SHAPE.fullmatch(digits)  # an ID with a typo in its check digit
    )


def _valid_iban(value: str) -> bool:
    """IBAN: move the first 4 characters to the end, letters → 10..35; valid iff n mod 97 = 1."""
    s = value.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    n = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(n) % 97 == 1


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return ":" not in value or sum(c in "0123456789abcdefABCDEF" for c in value) >= 4


def _valid_phone(value: str) -> bool:
    return 8 <= len(re.sub(r"\D", "", value)) <= 15


def _valid_us_phone(value: str) -> bool:
    body = re.sub(r"^\+?1[ .-]?", "", value)
    return "(" in body or len(set(re.findall(r"[ .-]", body))) == 1


def _secret_value(value: str) -> bool:
    """Labelled key/token values: long, or mixing letters and digits (not an English word)."""
    return len(value) >= 16 or (re.search(r"\d", value) is not None and len(value) >= 8)


# ---------------------------------------------------------------------------------- detectors

_L = r"(?<![0-9A-Za-z])"  # ASCII-only boundaries (see the module docstring)
_R = r"(?![0-9A-Za-z])"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{4}年\d{1,2}月\d{1,2}日?|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    rf"|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? \d{{4}})"
)


@dataclass(frozen=True)
class Detector:
    """A named regular expression; the named group `value` (if any) is the span reported."""

    name: str
    kind: str
    pattern: re.Pattern
    priority: int  # breaks ties between spans of equal length: the more specific kind wins
    validate: Callable[[str], bool] | None = None
    not_after: re.Pattern | None = None  # context just before the span that vetoes it
    adjust: Callable[[str, int, int], tuple[int, int] | None] | None = None

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        group = "value" if "value" in self.pattern.groupindex else 0
        for m in self.pattern.finditer(text):
            start, end = m.span(group)
            if self.validate is not None and not self.validate(text[start:end]):
                continue
            if self.not_after is not None and self.not_after.search(
                text[max(0, start - 16) : start]
            ):
                continue
            if self.adjust is not None:
                found = self.adjust(text, start, end)
                if found is None:
                    continue
                start, end = found
            yield start, end


_ADDRESS_LEAD_IN = "在住于是到往寄送至为的址"


def _trim_cn_address(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The regex starts up to 20 characters early ("我住在北京市..."); cut after the last lead-in."""
    value = text[start:end]
    road = re.search(r"(?:路|街|大道|大街|巷|胡同|弄)\d", value)
    head = value[: road.start()] if road else value
    cut = max(head.rfind(ch) for ch in _ADDRESS_LEAD_IN) + 1
    if len(head) - cut < 2:  # a road needs a name of at least two characters
        return None
    return start + cut, end


def _d(name: str, kind: str, pattern: str, priority: int, flags: int = 0, **kw) -> Detector:
    return Detector(name, kind, re.compile(pattern, flags), priority, **kw)


_NOT_ORDER = re.compile(
    r"(?:订单|单号|运单|快递|编号|流水号|(?<![A-Za-z])(?:order|tracking|invoice|ref(?:erence)?))\s*(?:no\.?|number|#|号)?\s*[:：#]?\s*$",
    re.IGNORECASE,
)

DETECTORS: tuple[Detector, ...] = (
    _d(
        "private_key",
        "secret",
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
        95,
    ),
    _d(
        "api_key",
        "secret",
        _L + r"(?:sk-(?:proj-|svcacct-|ant-)?[A-Za-z0-9_-]{8,}"
        r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
        r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
        r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,}"
        r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})" + _R,
        90,
    ),
    _d(
        "auth_header",
        "secret",
        r"(?i:bearer|authorization\s*[:=]\s*basic)\s+(?P<value>[A-Za-z0-9._~+/-]{12,}=*)",
        90,
    ),
    _d(
        "labelled_password",
        "secret",
        _L
        + r"(?i:password|passwd|pwd|passcode)(?:\s*[=:：]\s*|\s+is\s+)[\"']?(?P<value>[^\s\"',;]{4,})",
        88,
    ),
    _d(
        "labelled_password_zh",
        "secret",
        r"(?:密码|口令)\s*(?:是|为)?\s*[:：]?\s*(?P<value>[!-~]{4,})",
        88,
    ),
    _d(
        "labelled_secret",
        "secret",
        r"(?<![A-Za-z])(?i:api[_-]?key|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|token|密钥)"
        r"\s*[\"']?\s*[=:：]\s*[\"']?(?P<value>[A-Za-z0-9_\-./+=]{8,})",
        88,
        validate=_secret_value,
    ),
    _d(
        "url_credentials",
        "url_credentials",
        _L + r"[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s/?#@:]+:[^\s/?#@]+@[A-Za-z0-9.-]+(?::\d{1,5})?",
        85,
    ),
    _d(
        "id_cn",
        "id_cn",
        _L + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _R,
        80,
        validate=valid_cn_id,
    ),
    _d(
        "iban",
        "bank_account",
        _L + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _R,
        78,
        validate=_valid_iban,
    ),
    _d(
        "card",
        "card",
        r"(?<![0-9A-Za-z-])(?:\d{13,19}|\d{4}([ -])\d{4}(?:\1\d{4}){1,2}(?:\1\d{1,3})?"
        r"|\d{4}([ -])\d{6}\2\d{4,5})(?![0-9A-Za-z])",
        75,
        validate=_valid_card,
        not_after=_NOT_ORDER,
    ),
    _d(
        "ssn_us",
        "ssn",
        r"(?<![0-9A-Za-z-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![0-9A-Za-z-])",
        70,
    ),
    _d(
        "email",
        "email",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9])",
        60,
    ),
    _d(
        "labelled_dob",
        "dob",
        r"(?:(?<![A-Za-z])(?i:date\s+of\s+birth|birth\s?date|birthday|d\.?o\.?b\.?|born(?:\s+on)?)"
        r"|出生日期|出生年月日?|生日|出生于|生于)"
        rf"\s*(?:is|was|是|为)?\s*[:：]?\s*(?P<value>{_DATE})(?![0-9])",
        55,
    ),
    _d(
        "labelled_card",
        "card",
        r"(?:(?:银行|信用|借记)?卡号|(?i:(?:credit |debit )?card\s*(?:number|no\.?|#)))"
        r"\s*(?:is|为|是)?\s*[:：#]?\s*(?P<value>\d(?:[ -]?\d){12,18})(?![0-9])",
        77,
    ),
    _d(
        "labelled_account",
        "bank_account",
        r"(?:(?:银行)?(?:账号|帐号|账户|帐户)|(?i:(?:bank\s+)?account\s*(?:number|no\.?|#)|acct\.?\s*(?:number|no\.?|#)?|bank\s+account))"
        r"\s*(?:is|为|是)?\s*[:：#]?\s*(?P<value>\d(?:[ -]?\d){7,29})(?![0-9])",
        76,
    ),
    _d(
        "phone_cn_mobile",
        "phone",
        r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?|\(\+?86\)\s?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])",
        40,
        not_after=_NOT_ORDER,
    ),
    _d(
        "phone_cn_landline",
        "phone",
        _L + r"(?:\(0\d{2,3}\)\s?|0\d{2,3}-)[2-9]\d{6,7}(?:-\d{1,5})?(?![0-9])",
        40,
        not_after=_NOT_ORDER,
    ),
    _d(
        "phone_e164",
        "phone",
        r"(?<![0-9A-Za-z+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{2,5}\)?){2,6}(?![0-9])",
        40,
        validate=_valid_phone,
    ),
    _d(
        "phone_us",
        "phone",
        r"(?<![0-9A-Za-z+-])(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![0-9A-Za-z-])",
        40,
        validate=_valid_us_phone,
        not_after=_NOT_ORDER,
    ),
    _d(
        "ipv4",
        "ip",
        r"(?<![0-9A-Za-z.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9]|\.\d)",
        40,
        not_after=re.compile(r"(?:(?<![A-Za-z])(?i:version|ver\.?|v)|版本)\s*[:：]?\s*$"),
    ),
    _d(
        "ipv6",
        "ip",
        r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![0-9A-Za-z:])",
        41,
        validate=_valid_ip,
    ),
    _d(
        "address_en",
        "address",
        _L + r"\d{1,5}[A-Za-z]?(?: (?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th)|[NSEW]\.?)){1,4} "
        r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
        r"|Terrace|Highway|Hwy|Parkway|Pkwy|Square|Sq)\.?(?![A-Za-z])"
        r"(?:,? (?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl)\.? ?#?[0-9A-Za-z-]+)?",
        30,
    ),
    _d(
        "address_cn",
        "address",
        rf"[{CJK_BASIC}]{{2,20}}?(?:路|街|大道|大街|巷|胡同|弄)\d{{1,5}}(?:-\d{{1,5}})?号院?"
        r"(?:\d{1,4}(?:号楼|栋|幢|座))?(?:\d{1,3}单元)?(?:\d{1,5}(?:室|房))?",
        30,
        adjust=_trim_cn_address,
    ),
)

PII_KINDS: tuple[str, ...] = tuple(dict.fromkeys(d.kind for d in DETECTORS))


def check_kinds(kinds: Iterable[str] | None) -> set[str]:
    """The set of kinds asked for (None = all); an unknown kind raises ConfigError."""
    if kinds is None:
        return set(PII_KINDS)
    wanted = {k.strip().lower() for k in kinds if k.strip()}
    unknown = sorted(wanted - set(PII_KINDS))
    if unknown:
        raise ConfigError(
            f"unknown PII kind(s) {', '.join(unknown)}; known kinds: {', '.join(PII_KINDS)}",
            field="kinds",
        )
    return wanted


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[Span]:
    """All PII/secret spans in `text`, sorted and non-overlapping.

    Overlaps are resolved greedily: the longest span wins, ties go to the more specific kind.
    """
    wanted = check_kinds(kinds)
    candidates = []
    for det in DETECTORS:
        if det.kind in wanted:
            for start, end in det.spans(text):
                if end > start:
                    candidates.append((end - start, det.priority, -start, det.kind, start, end))
    candidates.sort(reverse=True)
    taken = bytearray(len(text))
    spans = []
    for _, _, _, kind, start, end in candidates:
        if not any(taken[start:end]):
            taken[start:end] = b"\x01" * (end - start)
            spans.append(Span(kind, start, end, text[start:end]))
    return sorted(spans, key=lambda s: s.start)


# ---------------------------------------------------------------------------------- redaction

STYLES = ("tag", "mask", "hash")


def normalize_value(kind: str, value: str) -> str:
    """The canonical form pseudonyms are computed from ("138 1234 5678" ≡ "+86 13812345678")."""
    if kind == "email":
        return value.lower()
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if kind in ("phone", "card", "id_cn", "ssn", "bank_account"):
        canonical = re.sub(r"[^0-9A-Za-z]", "", value).upper()
        if kind == "phone" and re.fullmatch(r"(?:00)?861[3-9]\d{9}", canonical):
            canonical = canonical[-11:]
        return canonical
    return value.strip()


def pseudonym(kind: str, value: str, salt: str | None = None, length: int = 6) -> str:
    """[KIND:h], h = first `length` hex digits of sha256(salt ‖ 0x00 ‖ kind ‖ 0x00 ‖ normalized value)."""
    data = "\x00".join([salt or "", kind, normalize_value(kind, value)]).encode("utf-8")
    return f"[{kind.upper()}:{hashlib.sha256(data).hexdigest()[:length]}]"


def mask(value: str) -> str:
    """Every letter, digit and CJK character becomes `*`; separators stay, so the shape reads."""
    return "".join("*" if ch.isalnum() else ch for ch in value)


def redact(
    text: str,
    *,
    kinds: Iterable[str] | None = None,
    style: str = "tag",
    salt: str | None = None,
) -> tuple[str, list[Span]]:
    """Replace every PII span: "tag" → [EMAIL], "mask" → ***@*****.***, "hash" → [EMAIL:3f2a9c].

    Hash pseudonyms are stable for the same value, kind and salt (within and across calls).
    Without a secret salt a pseudonym of a low-entropy value (a phone number) can be reversed by
    trying every value, so pass one when the pseudonyms leave your hands.
    """
    if style not in STYLES:
        raise ConfigError(
            f"unknown redaction style {style!r}; expected one of {', '.join(STYLES)}",
            field="style",
        )
    spans = find_pii(text, kinds)
    parts, pos = [], 0
    for s in spans:
        parts.append(text[pos : s.start])
        if style == "tag":
            parts.append(s.tag)
        elif style == "mask":
            parts.append(mask(s.text))
        else:
            parts.append(pseudonym(s.kind, s.text, salt))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts), spans
