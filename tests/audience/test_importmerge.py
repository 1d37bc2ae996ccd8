"""The merge's shortcuts give what the plain way gives: JSON texts made once, keys drawn at once."""
from __future__ import annotations

import json
import re

from postbode.audience.importmerge import JsonTexts
from postbode.store.schema import new_subscriber_key, new_subscriber_keys


def test_json_texts_are_json_dumps_of_each_value_even_when_values_compare_equal():
    texts = JsonTexts()
    for values in ({"tier": 1}, {"tier": True}, {"tier": 1.0}, {"tier": "1"}, {"tier": 1},
                   {"a": 1, "b": 2}, {"b": 2, "a": 1}, {}, {"list": [1, 2]}, {"list": [1, 2]}):
        assert texts.attributes(values) == json.dumps(values)
    assert texts.tags({"gala 2018", "donateur"}) == json.dumps(["donateur", "gala 2018"])
    assert texts.tags(set()) == "[]"


def test_json_texts_stay_bounded():
    texts = JsonTexts()
    for n in range(JsonTexts.MOST + 5):
        assert texts.attributes({"n": n}) == f'{{"n": {n}}}'
    assert len(texts._made) <= JsonTexts.MOST


def test_subscriber_keys_drawn_at_once_look_like_single_ones_and_differ():
    keys = new_subscriber_keys(1000)
    assert len(set(keys)) == 1000
    shape = re.compile(r"^[A-Za-z0-9_-]{22}$")
    assert all(shape.match(k) for k in keys) and shape.match(new_subscriber_key())
    assert new_subscriber_keys(0) == []
