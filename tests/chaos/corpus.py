"""Bad webhook bodies: generated (seeded, so a failure names a reproducible case) plus hand-written files
in fuzz_corpus/. Every body here is malformed or, at most, a well-formed event that is not a launch signal:
none of them may launch anything, signed or not.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "fuzz_corpus"
ACCOUNT = "1000000000000002"
CAMPAIGN = "120200000000000001"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes


def _meta(change: object, *, time: object = 1767225600, entry_id: object = ACCOUNT,
          obj: object = "ad_account") -> bytes:
    return json.dumps({"object": obj, "entry": [{"id": entry_id, "time": time, "changes": [change]}]},
                      ensure_ascii=False).encode()


def _launch(value: object) -> dict[str, object]:
    return {"field": "in_process_ad_objects", "value": value}


VALID_LAUNCH = _meta(_launch({"id": CAMPAIGN, "level": "CAMPAIGN"}))
VALID_CREATED = json.dumps({"campaign_id": CAMPAIGN, "campaign_name": "A - B", "daily_budget": 50}).encode()


def _nested(depth: int, inner: str = "1") -> str:
    return '{"a":' * depth + inner + "}" * depth


def generated(seed: int = 1234) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = [Case("empty", b""), Case("null", b"null"), Case("list", b"[]"), Case("string", b'"x"'),
                         Case("number", b"12"), Case("true", b"true"), Case("whitespace", b" \n\t ")]
    # random bytes
    for i in range(12):
        cases.append(Case(f"random-bytes-{i}", rng.randbytes(rng.choice([1, 7, 64, 500, 4096]))))
    cases.append(Case("invalid-utf8", b'{"campaign_id": "\xff\xfe\xfa"}'))
    cases.append(Case("utf16", VALID_CREATED.decode().encode("utf-16")))
    # truncated JSON: a valid launch or created body cut short
    for body, tag in ((VALID_LAUNCH, "launch"), (VALID_CREATED, "created")):
        for cut in sorted(rng.sample(range(1, len(body) - 1), 8)):
            cases.append(Case(f"truncated-{tag}-{cut}", body[:cut]))
    # huge numbers
    for label, number in (("1e400", "1e400"), ("-1e400", "-1e400"), ("400-digits", "9" * 400),
                          ("5000-digits", "9" * 5000), ("neg-5000-digits", "-" + "9" * 5000)):
        cases.append(Case(f"huge-id-{label}", _meta(_launch({"level": "CAMPAIGN"})).replace(
            b'"level"', b'"id": ' + number.encode() + b', "level"')))
        cases.append(Case(f"huge-time-{label}", VALID_LAUNCH.replace(b"1767225600", number.encode())))
        cases.append(Case(f"huge-created-id-{label}", b'{"campaign_id": ' + number.encode() + b"}"))
    cases.append(Case("created-budget-1e400", VALID_CREATED.replace(b"50", b"1e400")))
    cases.append(Case("nan-literal", VALID_LAUNCH.replace(b"1767225600", b"NaN")))
    cases.append(Case("infinity-literal", VALID_CREATED.replace(b"50", b"Infinity")))
    # wrong types, field by field
    wrong = [None, True, 1.5, -1, 0, [], {}, ["x"], {"id": CAMPAIGN}, "", " "]
    for i, w in enumerate(wrong):
        cases.append(Case(f"launch-id-{i}-{type(w).__name__}", _meta(_launch({"id": w, "level": "CAMPAIGN"}))))
        cases.append(Case(f"edit-id-{i}-{type(w).__name__}", _meta(
            {"field": "field_changed", "value": {"object_type": "campaign", "object_id": w}})))
        cases.append(Case(f"created-id-{i}-{type(w).__name__}", json.dumps({"campaign_id": w}).encode()))
        cases.append(Case(f"object-{i}", _meta(_launch({"id": CAMPAIGN, "level": "CAMPAIGN"}), obj=w)))
        cases.append(Case(f"entry-id-{i}", _meta(_launch({"id": CAMPAIGN, "level": "CAMPAIGN"}), entry_id=w)))
        if not (isinstance(w, int) and w >= 0):  # True and 0 are unix times, as far as JSON can tell
            cases.append(Case(f"time-{i}", _meta(_launch({"id": CAMPAIGN, "level": "CAMPAIGN"}), time=w)))
        cases.append(Case(f"value-{i}", _meta(_launch(w))))
        cases.append(Case(f"level-{i}", _meta(_launch({"id": CAMPAIGN, "level": w}))))
        cases.append(Case(f"entry-{i}", json.dumps({"object": "ad_account", "entry": w}).encode()))
        cases.append(Case(f"changes-{i}", json.dumps(
            {"object": "ad_account", "entry": [{"id": ACCOUNT, "time": 1, "changes": w}]}).encode()))
    for bad_id in ("12a", "-1", "1 2", " 120200000000000001", "120200000000000001\n", "1" * 65, "../../etc",
                   "0x1F", "\uff11\uff12\uff10\uff12", "120200000000000001; DROP TABLE launches"):  # fullwidth
        cases.append(Case(f"launch-id-str-{bad_id[:12]!r}", _meta(_launch({"id": bad_id, "level": "CAMPAIGN"}))))
        cases.append(Case(f"created-id-str-{bad_id[:12]!r}", json.dumps({"campaign_id": bad_id}).encode()))
    # unicode
    texts = ("Beyoncé", "周杰伦", "محمد", "\u202egnos", "🎵🔥" * 50, "a\u0000b", "\ufeff", "ÿ" * 3000)
    for i, text in enumerate(texts):
        cases.append(Case(f"unicode-field-{i}", _meta({"field": text, "value": {"id": text}})))
        cases.append(Case(f"unicode-created-{i}", json.dumps({"campaign_id": text}, ensure_ascii=i % 2 == 0).encode()))
    cases.append(Case("lone-surrogate-field", VALID_LAUNCH.replace(b"in_process_ad_objects", b"\\ud800")))
    cases.append(Case("lone-surrogate-created", b'{"campaign_id": "\\udc00"}'))
    # deep nesting
    for depth in (64, 199, 201, 1000, 100_000):
        cases.append(Case(f"deep-array-{depth}", b"[" * depth + b"]" * depth))
        cases.append(Case(f"deep-object-{depth}", _nested(depth).encode()))
        cases.append(Case(f"deep-in-value-{depth}", _meta(_launch(json.loads('{"x":0}'))).replace(
            b'{"x": 0}', _nested(depth).encode())))
    # sizes
    cases.append(Case("over-1mb", b'{"campaign_id": "' + b"1" * (1024 * 1024 + 10) + b'"}'))
    cases.append(Case("many-changes-not-launch", _meta({"field": "creative_fatigue", "value": {}}).replace(
        b'"changes": [', b'"changes": [' + b'{"field": "x", "value": {}},' * 2000)))
    cases.append(Case("duplicate-keys", b'{"campaign_id": {"a": 1}, "campaign_id": [1]}'))
    return cases


def from_files() -> list[Case]:
    return [Case(f"file-{p.name}", p.read_bytes()) for p in sorted(CORPUS_DIR.iterdir()) if p.is_file()]


def corpus(seed: int = 1234) -> list[Case]:
    return generated(seed) + from_files()
