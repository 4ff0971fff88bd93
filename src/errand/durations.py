"""Durations in formation.yaml and schedules: 30, 2.5, "90s", "15m", "24h", "7d" -> seconds.

A leaf so every config section (config.py, schedules_config.py) and the schedule spec parse
one way; config.py re-exports both names.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from 30, 2.5, "90s", "15m", "24h", "7d"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, '90s', '15m', '24h'")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration such as 30, '90s', '15m', '24h', got {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
