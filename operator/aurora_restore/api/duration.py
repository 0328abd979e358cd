"""Durations as users write them in manifests: "90s", "30m", "6h", "1h30m", "7d"."""

import re
from datetime import timedelta

# Digits per unit are bounded so that the CRD itself refuses a duration no date arithmetic can hold: at most 99999d,
# 999999h, 9999999m and 99999999s (about 410 years in all; "999999999h" or "99999999999999999999d" are refused).
DURATION_PATTERN = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,8}s)?$"
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-like duration; raise ValueError naming the text when it is not one."""
    if not text or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 6h, 1h30m or 7d")
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in re.findall(r"([0-9]+)([dhms])", text))
    return timedelta(seconds=seconds)
