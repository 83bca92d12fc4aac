"""The plugin's settings: ``OMNI_DASHBOARD_*`` keys, their defaults and validation.

Each key is read from the Flask config first, then from the environment, then its
default. A bad value raises :class:`ConfigError`, which stops start-up with a message
that says how to fix it.
"""

import os
import re
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


def read_int(config: Mapping, key: str, default: int, minimum: int, maximum: int) -> int:
    """The integer setting ``key``, validated within [minimum, maximum]."""
    value = _raw(config, key, default)
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{key}={value!r} is not a whole number; set it to an integer") from exc
    if not minimum <= number <= maximum:
        raise ConfigError(f"{key}={number} is out of range; set it between {minimum} and {maximum}")
    return number


def read_choice(config: Mapping, key: str, default: str, choices: tuple[str, ...]) -> str:
    """The setting ``key``: one of ``choices`` (case-insensitive)."""
    value = _raw(config, key, default)
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    return text


def parse_subjects(value) -> tuple[str, ...]:
    """A comma list of NATS subjects (wildcards allowed)."""
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    subjects = tuple(p.strip() for p in parts if p.strip())
    bad = [s for s in subjects if " " in s or ".." in s or s.startswith(".") or s.endswith(".")]
    if not subjects or bad:
        raise ConfigError(
            f"OMNI_DASHBOARD_STREAM_SUBJECTS={value!r} is not a comma list of NATS subjects; "
            "use e.g. 'message.>,instance.>'"
        )
    return subjects


METRICS_PATH = "/api/v2/dashboard/metrics"
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def parse_route_path(value, key: str) -> str | None:
    """A URL path of plain segments such as ``/api/v2/dashboard/metrics``; ``off`` is None."""
    text = str(value).strip()
    if text.lower() == "off":
        return None
    if not _PATH.fullmatch(text):
        raise ConfigError(
            f"{key}={value!r} is not a URL path; use one such as '{METRICS_PATH}' "
            "(segments of letters, digits and ._~-) or 'off'"
        )
    return text


@dataclass(frozen=True)
class StreamSettings:
    """Settings of the live feed (see docs/configuration.md)."""

    nats_url: str | None = None
    subjects: tuple[str, ...] = ("message.>", "instance.>")
    heartbeat_seconds: int = 15
    retry_ms: int = 3000
    replay_size: int = 1000
    queue_size: int = 1000
    max_clients: int = 200
    max_types: int = 20
    lifetime_ms: int = 0
    writer: str = "auto"
    send_timeout: int = 30
    jetstream: str = "use"

    @classmethod
    def from_mapping(cls, config: Mapping) -> "StreamSettings":
        """Read and validate the ``OMNI_DASHBOARD_STREAM_*`` keys and ``OMNI_NATS_URL``."""
        url = _raw(config, "OMNI_NATS_URL", None)
        if url is not None and not str(url).strip():
            url = None
        if url is not None and not str(url).startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ConfigError(
                f"OMNI_NATS_URL={url!r} is not a NATS URL; use e.g. nats://127.0.0.1:4222 "
                "or leave it unset for the in-process bus"
            )
        return cls(
            nats_url=url,
            subjects=parse_subjects(
                _raw(config, "OMNI_DASHBOARD_STREAM_SUBJECTS", "message.>,instance.>")
            ),
            heartbeat_seconds=read_int(config, "OMNI_DASHBOARD_STREAM_HEARTBEAT", 15, 1, 300),
            retry_ms=read_int(config, "OMNI_DASHBOARD_STREAM_RETRY_MS", 3000, 100, 600_000),
            replay_size=read_int(config, "OMNI_DASHBOARD_STREAM_REPLAY", 1000, 0, 1_000_000),
            queue_size=read_int(config, "OMNI_DASHBOARD_STREAM_QUEUE", 1000, 1, 1_000_000),
            max_clients=read_int(config, "OMNI_DASHBOARD_STREAM_MAX_CLIENTS", 200, 1, 100_000),
            lifetime_ms=read_int(config, "OMNI_DASHBOARD_STREAM_LIFETIME_MS", 0, 0, 86_400_000),
            writer=read_choice(config, "OMNI_DASHBOARD_STREAM_WRITER", "auto", ("auto", "thread")),
            send_timeout=read_int(config, "OMNI_DASHBOARD_STREAM_SEND_TIMEOUT", 30, 1, 3600),
            jetstream=read_choice(
                config, "OMNI_DASHBOARD_STREAM_JETSTREAM", "use", ("create", "use", "off")
            ),
        )


@dataclass(frozen=True)
class RollupSettings:
    """Settings of the rollup tables (see docs/configuration.md)."""

    mode: str = "auto"
    horizon_minutes: int = 30
    refresh: str = "request"
    dead_letters: str = "triggers"

    @classmethod
    def from_mapping(cls, config: Mapping) -> "RollupSettings":
        """Read and validate the ``OMNI_DASHBOARD_ROLLUPS*`` keys."""
        return cls(
            mode=read_choice(config, "OMNI_DASHBOARD_ROLLUPS", "auto", ("off", "on", "auto")),
            horizon_minutes=read_int(
                config, "OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES", 30, 15, 7 * 24 * 60
            ),
            refresh=read_choice(
                config, "OMNI_DASHBOARD_ROLLUPS_REFRESH", "request", ("request", "cron")
            ),
            dead_letters=read_choice(
                config, "OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS", "triggers", ("triggers", "raw")
            ),
        )


@dataclass(frozen=True)
class DashboardConfig:
    """Validated plugin settings (see docs/configuration.md)."""

    providers: tuple[str, ...] | None = None
    timezone: str = "UTC"
    timeline_max_buckets: int = 1000
    cache_seconds: int = 5
    statement_timeout_ms: int = 5000
    metrics_path: str | None = METRICS_PATH
    stream: StreamSettings = StreamSettings()
    rollups: RollupSettings = RollupSettings()

    @classmethod
    def from_mapping(cls, config: Mapping) -> "DashboardConfig":
        """Read and validate every ``OMNI_DASHBOARD_*`` key."""
        return cls(
            providers=parse_provider_names(_raw(config, "OMNI_DASHBOARD_PROVIDERS", ALL)),
            timezone=parse_timezone(_raw(config, "OMNI_DASHBOARD_TIMEZONE", "UTC")),
            timeline_max_buckets=read_int(
                config, "OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS", 1000, 48, 100_000
            ),
            cache_seconds=read_int(config, "OMNI_DASHBOARD_CACHE_SECONDS", 5, 0, 3600),
            statement_timeout_ms=read_int(
                config, "OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS", 5000, 0, 3_600_000
            ),
            metrics_path=parse_route_path(
                _raw(config, "OMNI_DASHBOARD_METRICS_PATH", METRICS_PATH),
                "OMNI_DASHBOARD_METRICS_PATH",
            ),
            stream=StreamSettings.from_mapping(config),
            rollups=RollupSettings.from_mapping(config),
        )
