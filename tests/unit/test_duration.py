"""api/duration.py: the durations users write in manifests (spec.timeout, spec.source.latest.maxAge)."""

import re
from datetime import timedelta

import pytest

from aurora_restore.api.duration import DURATION_PATTERN, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("26h", timedelta(hours=26)),
        ("0s", timedelta(0)),
        ("0090m", timedelta(minutes=90)),
    ],
)
def test_parses_go_like_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "6", "h", "6H", "1.5h", "-1h", "+1h", "1w", "30m1h", "1h 30m", " 6h", "6h ", "6hours", "1h1h"]
)
def test_rejects_anything_else_naming_the_text(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)


def test_the_pattern_has_no_look_arounds_so_the_apiserver_can_use_it():
    assert "(?" not in DURATION_PATTERN
    assert DURATION_PATTERN.startswith("^") and DURATION_PATTERN.endswith("$")
