"""Hostile input, through acceptance and output building: every output is strict JSON with
no key twice and valid against its published schema, and an enriched event holds the
document that was accepted."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodcat.consumer.outputs import dead_letter, enriched_value
from prodcat.consumer.parse import Rejection, parse_event
from prodcat.schemas.events import MAX_EVENT_BYTES
from tests.schemas import published

CLASSIFICATION = {
    "label": "Shoes",
    "confidence": 0.9,
    "top_k": [{"label": "Shoes", "score": 0.9}, {"label": "Baby", "score": 0.1}],
    "model_name": "m",
    "model_version": "v1",
    "timings": {"queued_ms": 1.0, "inference_ms": 2.0, "batch_size": 1},
}
# Few keys, so objects often repeat one; `classification` is ours to replace.
KEYS = ["price", "classification", "a", "b", "\u00e9"]

# JSON text: each strategy draws the bytes of one value. `hostile` is what only lenient
# parsers take, or what strict ones read differently; `scalars` weighs it below the plain
# values, so that an event is often valid but for one member.
plain = st.one_of(
    st.integers().map(str),
    st.integers(min_value=10**18, max_value=10**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=30).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(
        [
            "true",
            "false",
            "null",
            "1E3",
            "-0",
            "0.10",
            "1e-400",
            '"9.99"',
            '"\\ud83d\\ude00"',
            '"   "',
            '"\\u0000"',
        ]
    ),
)
hostile = st.sampled_from(
    ["Infinity", "-Infinity", "NaN", "1e400", "-1e400", "2" * 320, '"\\ud800"', '"\\udc00x"']
)
scalars = st.one_of(plain, plain, plain, hostile)
# Mostly valid ids and titles, so that what the other members hold decides more often.
valid_ids = st.one_of(
    st.text(min_size=1, max_size=20).map(json.dumps), st.integers(min_value=10**19, max_value=10**60).map(str)
)
valid_titles = st.text(min_size=1, max_size=40).filter(str.strip).map(json.dumps)
ids = st.one_of(valid_ids, valid_ids, scalars)
# The one optional member with a type: a price only a lax validator takes must not pass as one.
prices = st.one_of(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(['"9.99"', "true", "-1", "null"]),
    scalars,
)
titles = st.one_of(valid_titles, valid_titles, scalars)


def members(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=3)), values)
    return st.lists(pair, max_size=6).map(
        lambda pairs: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in pairs) + "}"
    )


def arrays(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, max_size=4).map(lambda items: f"[{', '.join(items)}]")


values = st.recursive(scalars, lambda inner: st.one_of(arrays(inner), members(inner)), max_leaves=12)


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """An object with an id and a title, in any form, each maybe twice, among other members."""
    pairs = [("id", draw(ids)), ("title", draw(titles))]
    if draw(st.booleans()):
        pairs.append(("price", draw(prices)))
    others = st.tuples(st.sampled_from(KEYS), values)
    repeats = st.one_of(st.tuples(st.just("id"), valid_ids), st.tuples(st.just("title"), valid_titles))
    pairs += draw(st.lists(st.one_of(others, others, repeats), max_size=5))
    pairs = draw(st.permutations(pairs))
    space = draw(st.sampled_from(["", " ", "\n  "]))
    body = f",{space}".join(f"{json.dumps(k)}:{space}{v}" for k, v in pairs)
    return ("{" + space + body + space + "}" + space).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(events(), events(), events(), values.map(lambda v: v.encode("utf-8", "surrogatepass")))
)
def test_every_output_of_a_hostile_event_keeps_its_published_schema(value: bytes) -> None:
    parsed = parse_event(value, MAX_EVENT_BYTES)
    if isinstance(parsed, Rejection):
        letter = dead_letter(
            kind=parsed.kind,
            message=parsed.message,
            topic="in",
            partition=0,
            offset=0,
            key=None,
            value=value,
            headers=None,
            group="g",
            limit=MAX_EVENT_BYTES,
        )
        published.dead_letter(letter)
        return
    # As the service decides it: only a `classification` member is known before output.
    extra = parsed.model_extra
    replaces_field = extra is not None and "classification" in extra
    output = enriched_value(value, CLASSIFICATION, replaces_field=replaces_field)
    event = published.enriched_event(output)
    # What was accepted, a strict parser reads; the enriched event holds that same document.
    produced = orjson.loads(value)
    assert event == {**produced, "id": parsed.id, "classification": CLASSIFICATION}
    assert event["title"] == parsed.title
