"""A connector's configuration: Kafka Connect style string settings, read with types and checked for typos.

    >>> s = Settings({"name": "t", "connector.class": "generator", "rate": "50", "follow": "true"})
    >>> s.integer("rate", 0), s.flag("follow", False), s.text("schema", "trades")
    (50, True, 'trades')
"""

from __future__ import annotations

import difflib

import pandas as pd

from streamframe.errors import ConfigError
from streamframe.kafka.config import redact

# Keys every connector takes (Kafka Connect's own), whether or not it uses them.
COMMON_KEYS = {
    "name": "the connector's name (unique in the kernel)",
    "connector.class": "what it is: file, pandas, sqlite, generator or topic",
    "tasks.max": "accepted for Kafka Connect compatibility; in-kernel connectors run one task",
}
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_pairs(tokens) -> dict[str, str]:
    """['a=1', 'b=x=y'] → {'a': '1', 'b': 'x=y'}; anything without '=' is an error."""
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = str(token).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {token!r} (e.g. topic=trades)")
        out[key] = value.strip()
    return out


def parse_properties(text: str) -> dict[str, str]:
    """A .properties body (one key=value per line, '#' or '!' comments) → dict."""
    lines = [ln.strip() for ln in text.splitlines()]
    return parse_pairs([ln for ln in lines if ln and not ln.startswith(("#", "!"))])


def parse_duration(value, key: str) -> float:
    """Seconds from 30, "30", "30s", "2min", "1h"."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        seconds = pd.Timedelta(str(value)).total_seconds()
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a duration; use seconds or e.g. 30s, 2min, 1h") from None
    return seconds


class Settings:
    """String settings (or Python values, from the API) read by key with a type."""

    def __init__(self, config: dict):
        self.raw = {str(k): v for k, v in config.items()}

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def redacted(self) -> dict:
        return redact({k: str(v) for k, v in self.raw.items()})

    def _get(self, key: str, default, aliases=()):
        for k in (key, *aliases):
            if k in self.raw and self.raw[k] not in (None, ""):
                return self.raw[k]
        return default

    def text(self, key: str, default=None, choices=None, aliases=()) -> str | None:
        value = self._get(key, default, aliases)
        value = None if value is None else str(value)
        if choices is not None and value not in choices:
            raise ConfigError(f"{key}={value!r} is not valid; use one of: "
                              f"{', '.join(str(c) for c in choices if c is not None)}")
        return value

    def require(self, key: str, hint: str = "", aliases=()) -> str:
        value = self.text(key, aliases=aliases)
        if value is None:
            raise ConfigError(f"missing required setting {key}=...{' (' + hint + ')' if hint else ''}")
        return value

    def integer(self, key: str, default=None, minimum: int | None = None) -> int | None:
        value = self._get(key, default)
        if value is None:
            return None
        try:
            number = int(str(value).replace("_", ""))
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{key}={number} must be at least {minimum}")
        return number

    def number(self, key: str, default=None, minimum: float | None = None) -> float | None:
        value = self._get(key, default)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not a number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{key}={number:g} must be at least {minimum:g}")
        return number

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise ConfigError(f"{key}={value!r} is not true or false")

    def items(self, key: str, aliases=()) -> list[str]:
        value = self._get(key, None, aliases)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [v.strip() for v in str(value).split(",") if v.strip()]

    def duration(self, key: str, default=None) -> float | None:
        value = self._get(key, default)
        return None if value is None else parse_duration(value, key)

    def prefixed(self, prefix: str) -> dict:
        """Settings under `prefix`, without it: prefixed("consumer.override.") → {"fetch.max.bytes": ...}."""
        return {k[len(prefix):]: v for k, v in self.raw.items()
                if k.startswith(prefix) and len(k) > len(prefix)}

    def check_unknown(self, what: str, known, prefixes=()) -> None:
        """Fail on a key the connector does not take (a typo would otherwise be ignored silently)."""
        known = set(known) | set(COMMON_KEYS)
        unknown = [k for k in self.raw if k not in known and not k.startswith(tuple(prefixes))]
        if not unknown:
            return
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown setting {key!r} for the {what} connector{hint} "
                          f"(its settings: {', '.join(sorted(set(known)))})")
