"""The plugin's settings: ``OMNI_DASHBOARD_*`` keys, their defaults and validation.

Each key is read from the Flask config first, then from the environment, then its
default. A bad value raises :class:`ConfigError`, which stops start-up with a message
that says how to fix it.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALL = "all"


class ConfigError(RuntimeError):
    """A setting is invalid; the message names the key and how to fix it."""


def _raw(config: Mapping, key: str, default):
    if key in config and config[key] is not None:
        return config[key]
    return os.environ.get(key, default)


def parse_provider_names(value) -> tuple[str, ...] | None:
    """``None`` means every installed provider; an empty tuple means none."""
    if isinstance(value, list | tuple | set | frozenset):
        names = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.lower() == ALL:
            return None
        if text.lower() == "none":
            return ()
        names = [part.strip() for part in text.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def parse_timezone(value, key: str = "OMNI_DASHBOARD_TIMEZONE") -> str:
    """Validate an IANA time-zone name and return it."""
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{key}={value!r} is not an IANA time zone; use a name such as 'UTC', "
            "'Europe/Berlin' or 'America/New_York'"
        ) from exc
    return name


def parse_int(value, key: str, minimum: int, maximum: int) -> int:
    """Validate an integer setting within [minimum, maximum]."""
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{key}={value!r} is not a whole number; set it to an integer") from exc
    if not minimum <= number <= maximum:
        raise ConfigError(f"{key}={number} is out of range; set it between {minimum} and {maximum}")
    return number


@dataclass(frozen=True)
class DashboardConfig:
    """Validated plugin settings (see docs/configuration.md)."""

    providers: tuple[str, ...] | None = None
    timezone: str = "UTC"
    timeline_max_buckets: int = 1000
    cache_seconds: int = 5

    @classmethod
    def from_mapping(cls, config: Mapping) -> "DashboardConfig":
        """Read and validate every ``OMNI_DASHBOARD_*`` key."""
        return cls(
            providers=parse_provider_names(_raw(config, "OMNI_DASHBOARD_PROVIDERS", ALL)),
            timezone=parse_timezone(_raw(config, "OMNI_DASHBOARD_TIMEZONE", "UTC")),
            timeline_max_buckets=parse_int(
                _raw(config, "OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS", 1000),
                "OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS",
                48,
                100_000,
            ),
            cache_seconds=parse_int(
                _raw(config, "OMNI_DASHBOARD_CACHE_SECONDS", 5),
                "OMNI_DASHBOARD_CACHE_SECONDS",
                0,
                3600,
            ),
        )
