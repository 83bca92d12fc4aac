"""The plugin's settings: ``OMNI_DASHBOARD_*`` keys, their defaults and validation.

Each key is read from the Flask config first, then from the environment, then its
default. A bad value raises :class:`ConfigError`, which stops start-up with a message
that says how to fix it. :data:`SETTINGS` is the one table of keys, defaults, parsers and
meanings: the settings classes read it, and docs/configuration.md shows its rows (a test
keeps the two equal).
"""

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALL = "all"


class ConfigError(RuntimeError):
    """A setting is invalid; the message names the key and how to fix it."""


def _raw(config: Mapping, key: str, default):
    if key in config and config[key] is not None:
        return config[key]
    return os.environ.get(key, default)


def parse_provider_names(value, key: str = "OMNI_DASHBOARD_PROVIDERS") -> tuple[str, ...] | None:
    """``None`` means every installed provider; an empty tuple means none (``all`` and
    ``none`` in any case). Nothing at all (an empty value) is an error: say which."""
    if isinstance(value, list | tuple | set | frozenset):
        names = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.lower() == ALL:
            return None
        if text.lower() == "none":
            return ()
        names = [part.strip() for part in text.split(",")]
    found = tuple(dict.fromkeys(name for name in names if name))
    if not found:
        raise ConfigError(
            f"{key}={value!r} names no provider: set it to 'all' (the default), 'none' or a "
            "comma list of provider names"
        )
    return found


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


def whole(minimum: int, maximum: int) -> Callable[[Any, str], int]:
    """A parser of whole numbers within [minimum, maximum]."""

    def parse(value, key: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError as exc:
            raise ConfigError(
                f"{key}={value!r} is not a whole number; set it to an integer"
            ) from exc
        if not minimum <= number <= maximum:
            raise ConfigError(
                f"{key}={number} is out of range; set it between {minimum} and {maximum}"
            )
        return number

    return parse


def one_of(*choices: str) -> Callable[[Any, str], str]:
    """A parser of one of ``choices`` (case-insensitive)."""

    def parse(value, key: str) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
        return text

    return parse


def parse_subjects(value, key: str = "OMNI_DASHBOARD_STREAM_SUBJECTS") -> tuple[str, ...]:
    """A comma list of NATS subjects (wildcards allowed)."""
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    subjects = tuple(p.strip() for p in parts if p.strip())
    bad = [s for s in subjects if " " in s or ".." in s or s.startswith(".") or s.endswith(".")]
    if not subjects or bad:
        raise ConfigError(
            f"{key}={value!r} is not a comma list of NATS subjects; use e.g. 'message.>,instance.>'"
        )
    return subjects


METRICS_PATH = "/api/v2/dashboard/metrics"
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def parse_route_path(value, key: str) -> str | None:
    """A URL path of plain segments such as ``/api/v2/dashboard/metrics``; ``off`` is None."""
    text = str(value).strip()
    if text.lower() == "off":
        return None
    if not _PATH.fullmatch(text) or {".", ".."} & set(text.split("/")):
        raise ConfigError(
            f"{key}={value!r} is not a URL path; use one such as '{METRICS_PATH}' "
            "(segments of letters, digits and ._~-, none of them '.' or '..') or 'off'"
        )
    return text


def installed(module: str) -> bool:
    """Whether an optional dependency (an extra's) can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def nats_servers(value) -> list[str]:
    """The server URLs of an ``OMNI_NATS_URL`` value: one URL or a comma list of them (a
    cluster's seed servers)."""
    return [part.strip() for part in str(value).split(",") if part.strip()]


def parse_nats_url(value, key: str) -> str | None:
    """A NATS URL or a comma list of them, or ``None`` (unset or empty: the in-process bus)."""
    if value is None or not str(value).strip():
        return None
    servers = nats_servers(value)
    bad = [url for url in servers if not url.startswith(("nats://", "tls://", "ws://", "wss://"))]
    if bad or not servers:
        raise ConfigError(
            f"{key}={value!r} is not a NATS URL or a comma list of them; use e.g. "
            "nats://127.0.0.1:4222 (a cluster: nats://n1:4222,nats://n2:4222,nats://n3:4222) "
            "or leave it unset for the in-process bus"
        )
    if not installed("nats"):
        raise ConfigError(
            f"{key} is set, but nats-py is not installed: "
            "pip install 'omni-dashboard-plugin[live]', or leave it unset for the in-process bus"
        )
    return ",".join(servers)


@dataclass(frozen=True)
class Setting:
    """One key: its default, its parser ``(value, key) -> setting`` and its meaning, as
    docs/configuration.md shows them (``shown`` when the default is not shown as is)."""

    key: str
    default: Any
    parse: Callable[[Any, str], Any]
    meaning: str
    shown: str = ""

    def read(self, config: Mapping):
        """The parsed value of the key in ``config``, the environment, or the default."""
        return self.parse(_raw(config, self.key, self.default), self.key)

    @property
    def value(self):
        """The parsed default."""
        return self.parse(self.default, self.key)

    def doc_row(self) -> str:
        """The key's row in docs/configuration.md."""
        return f"| `{self.key}` | {self.shown or f'`{self.default}`'} | {self.meaning} |"


SETTINGS = (
    Setting(
        "OMNI_DASHBOARD_PROVIDERS",
        "all",
        parse_provider_names,
        (
            "Providers to enable: `all`, `none` (either in any case), or a comma list of names "
            "(`rates,timeline,breakdowns,automations,filters,comparison`; `filters` adds `channel` "
            "to `/events/analytics`, `comparison` adds `compare` there and on the dashboard). "
            "`all` is every installed provider the host can serve (its endpoint served, its "
            "tables present, a filter's host fields computable); start-up logs a warning for "
            "each one left out, and why. A name that is unknown, or that the host cannot serve, "
            "is a start-up error saying why, and so is an empty value. Disabled providers' "
            "fields and arguments vanish from "
            "responses and `/openapi.json`; `none` adds nothing at all: no field, no route, no "
            "rollups, so that the document and every response are the host's own."
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_MISSING_TABLES",
        "disable",
        one_of("disable", "error"),
        (
            "What a missing table, or a missing column of one, of those the plugin reads "
            "([host integration](host-integration.md#the-tables-the-plugin-reads)) does, checked "
            "once at start-up: `disable` logs one warning per table naming it and what it "
            "disables (those providers, routes, Prometheus families and the rollups are left out "
            "of the app and its document), `error` stops start-up naming each"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_TIMEZONE",
        "UTC",
        parse_timezone,
        "IANA zone of timeline buckets when a request names none.",
    ),
    Setting(
        "OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS",
        1000,
        whole(48, 100_000),
        (
            "Cap on the buckets of one timeline (48 to 100000). A request that names a "
            "granularity and exceeds it gets a VALIDATION_ERROR; without a granularity, hourly is "
            "used when it fits, else daily when that fits, else a VALIDATION_ERROR naming the "
            "unbounded end of the window."
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_METRICS_PATH",
        METRICS_PATH,
        parse_route_path,
        (
            "Where the Prometheus scrape route is served ([prometheus](prometheus.md)); keep it "
            "under a path the host protects with its API key. `off` serves no route (a host can "
            "register `DashboardCollector` in its own registry instead). Anything but a path of "
            "plain segments (letters, digits, `._~-`; no `.` or `..` segment) is a start-up "
            "error, and so is a path another route of the app (the host's or the plugin's, "
            "such as `/api/v2/dashboard`) serves: the error names that route."
        ),
    ),
    Setting(
        "OMNI_NATS_URL",
        None,
        parse_nats_url,
        (
            "NATS server of the feed (`nats://host:4222`), or a comma list of a cluster's servers "
            "(the bridge fails over between them and the servers the cluster announces; see "
            "[deployment](deployment.md)); unset: the in-process bus"
        ),
        shown="unset",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_SUBJECTS",
        "message.>,instance.>",
        parse_subjects,
        "subjects the bridge subscribes",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_HEARTBEAT",
        15,
        whole(1, 300),
        "seconds of silence before a `: heartbeat` comment line (and WebSocket ping interval)",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_RETRY_MS",
        3000,
        whole(100, 600_000),
        "the `retry:` hint sent to SSE clients",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_REPLAY",
        1000,
        whole(0, 1_000_000),
        "events kept for resume (buffer mode), and the largest gap replayed from JetStream",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_QUEUE",
        1000,
        whole(1, 1_000_000),
        (
            "events a client may fall behind before it gets `overflow` and is closed (hung up on "
            "at once when its socket is full)"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_SEND_TIMEOUT",
        30,
        whole(1, 3600),
        (
            "seconds a client may make no progress before the server hangs up and frees its slot "
            "and thread: its receive window stays closed, what was sent stays unacknowledged, or "
            "bytes wait in the server without draining (1 to 3600; see "
            "[live feed](live-feed.md#deployment))"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_JETSTREAM",
        "use",
        one_of("create", "use", "off"),
        (
            "`use`: JetStream mode when existing streams capture every subject, else buffer mode; "
            "`create`: also create `OMNI_DASHBOARD_FEED` (file storage, 24 h, at most 1 GiB) for "
            "subjects no stream captures; `off`: buffer mode"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_REPLICAS",
        1,
        whole(1, 5),
        (
            "with `OMNI_DASHBOARD_STREAM_JETSTREAM=create`: replicas of `OMNI_DASHBOARD_FEED` "
            "(1 to 5; 3 on a three-node cluster, so that the stream outlives a node), set when the "
            "plugin creates it and brought to this number when it exists with another"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_MAX_CLIENTS",
        200,
        whole(1, 100_000),
        "open streams per process; beyond it, 503",
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_WRITER",
        "auto",
        one_of("auto", "thread"),
        (
            "`auto`: after the server wrote the head and opening, one writer thread continues "
            "every SSE stream in the server's framing where the server exposes the socket "
            "(gunicorn, werkzeug's threaded server); `thread`: each stream is written by its own "
            "request thread through the WSGI response"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_LIFETIME_MS",
        0,
        whole(0, 86_400_000),
        (
            "end each SSE stream after this long; clients reconnect and resume with Last-Event-ID, "
            "which spreads them over processes after a scale-out"
        ),
        shown="`0` (unlimited)",
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS",
        "auto",
        one_of("off", "on", "auto"),
        (
            "`off`: raw scans, no tables; `on`: read from the rollup tables, which `flask "
            "omni-dashboard install` (or `Rollups.install()`) creates: start-up stops while they "
            "are missing, and the install when it cannot create them; `auto`: on for PostgreSQL "
            "once installed (until then off, with a warning, checked again every 30 s), off for "
            "SQLite"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES",
        30,
        whole(15, 7 * 24 * 60),
        (
            "rows younger than this are always read raw, so late inserts and status updates within "
            "it stay exact (15 to 10080)"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS_REFRESH",
        "request",
        one_of("request", "cron"),
        (
            "`request`: a read that finds the rollups behind, or a kept tail to fold, starts a "
            "background refresh in its process (at most every 30 s); `cron`: only `flask "
            "omni-dashboard refresh` (cron every minute, or `--every 15` as a sidecar: the kept "
            "tail grows between two runs) refreshes"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS",
        "triggers",
        one_of("triggers", "raw"),
        (
            "While rollups are on: `triggers` keeps the dead-letter counts per status with "
            "triggers on `dead_letter_events` (created by the install with the current counts; "
            "needs ownership of the table or `TRIGGER` on it, else a warning and raw counts; see "
            "[rollups](rollups.md)); `raw` counts them on every read (a cost that grows with the "
            "table) and drops the triggers an earlier install created"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS_TAIL",
        "triggers",
        one_of("triggers", "raw"),
        (
            "While rollups are on, PostgreSQL: `triggers` keeps the events and automation logs "
            "of the raw tail (the slots after the rolled ones) by slot with triggers on "
            "`omni_events` and `automation_logs`, so that a read "
            "scans only the rows of the last seconds (the margin, below), however fast they "
            "arrive (needs ownership of both tables or "
            "`TRIGGER` on them, else a warning and raw reads; see [rollups](rollups.md)); `raw` "
            "reads the tail's rows on every request (a cost of the write rate times the horizon) "
            "and drops the triggers an earlier install created"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS",
        10,
        whole(0, 600),
        (
            "With `OMNI_DASHBOARD_ROLLUPS_TAIL=triggers`: a write to an event received (an "
            "automation log created) less than this long ago (by the database's clock) costs "
            "the writer no trigger call, and reads take such rows from `omni_events` "
            "(`automation_logs`) through its `received_at` (`created_at`) index; a write to "
            "an older one appends to the tail's log. Longer: fewer writes pay a "
            "call, reads scan more rows (the write rate times the margin plus the time between "
            "refreshes; at thousands of events a second, 2 with `refresh --every 1`: see "
            "performance.md#steady-single-row). 0 to 600; every node must use the same value "
            "(the install records it)"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS",
        5000,
        whole(0, 3_600_000),
        (
            "PostgreSQL: each statement of the plugin's own reads (the dashboard summary, the "
            "plugin-computed `/event-ops/metrics` and `/events/analytics` fields, and what runs "
            "alongside them) is cancelled after this long (`SET LOCAL statement_timeout`), which "
            "the host turns into a 503 envelope; 0 disables. Provider fields computed on the "
            "host's connection follow the host's own limit."
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_CACHE_SECONDS",
        5,
        whole(0, 3600),
        (
            "seconds a computed `GET /api/v2/dashboard` answer is reused for the same caller "
            "(every credential the request carries: `Authorization`, `x-api-key`, `api_key`, "
            "`Cookie`; or the host's `Dashboard(cache_scope=...)`) and arguments (0 disables)"
        ),
    ),
    Setting(
        "OMNI_DASHBOARD_STREAM_MAX_TYPES",
        20,
        whole(1, 1000),
        "event types one stream's `types` filter may name (a longer list is a VALIDATION_ERROR)",
    ),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}


def setting(key: str) -> Any:
    """A settings field read from ``key`` of :data:`SETTINGS`, defaulting to its default."""
    return field(default=BY_KEY[key].value, metadata={"key": key})


class _ReadByTable:
    """Settings whose fields are :func:`setting` fields (a nested group: its own class)."""

    @classmethod
    def from_mapping(cls, config: Mapping):
        """Read and validate the class's keys (a bad value raises :class:`ConfigError`)."""
        values = {}
        for item in fields(cast(Any, cls)):  # each subclass is a dataclass
            if "key" in item.metadata:
                values[item.name] = BY_KEY[item.metadata["key"]].read(config)
            else:
                group: Any = item.type  # a nested group: a _ReadByTable subclass
                values[item.name] = group.from_mapping(config)
        return cls(**values)


@dataclass(frozen=True)
class StreamSettings(_ReadByTable):
    """Settings of the live feed (see docs/configuration.md)."""

    nats_url: str | None = setting("OMNI_NATS_URL")
    subjects: tuple[str, ...] = setting("OMNI_DASHBOARD_STREAM_SUBJECTS")
    heartbeat_seconds: int = setting("OMNI_DASHBOARD_STREAM_HEARTBEAT")
    retry_ms: int = setting("OMNI_DASHBOARD_STREAM_RETRY_MS")
    replay_size: int = setting("OMNI_DASHBOARD_STREAM_REPLAY")
    queue_size: int = setting("OMNI_DASHBOARD_STREAM_QUEUE")
    max_clients: int = setting("OMNI_DASHBOARD_STREAM_MAX_CLIENTS")
    max_types: int = setting("OMNI_DASHBOARD_STREAM_MAX_TYPES")
    lifetime_ms: int = setting("OMNI_DASHBOARD_STREAM_LIFETIME_MS")
    writer: str = setting("OMNI_DASHBOARD_STREAM_WRITER")
    send_timeout: int = setting("OMNI_DASHBOARD_STREAM_SEND_TIMEOUT")
    jetstream: str = setting("OMNI_DASHBOARD_STREAM_JETSTREAM")
    replicas: int = setting("OMNI_DASHBOARD_STREAM_REPLICAS")

    @property
    def nats_servers(self) -> list[str]:
        """The servers of ``OMNI_NATS_URL`` (empty when unset)."""
        return nats_servers(self.nats_url) if self.nats_url else []


@dataclass(frozen=True)
class RollupSettings(_ReadByTable):
    """Settings of the rollup tables (see docs/configuration.md)."""

    mode: str = setting("OMNI_DASHBOARD_ROLLUPS")
    horizon_minutes: int = setting("OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES")
    refresh: str = setting("OMNI_DASHBOARD_ROLLUPS_REFRESH")
    dead_letters: str = setting("OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS")
    tail: str = setting("OMNI_DASHBOARD_ROLLUPS_TAIL")
    tail_margin_seconds: int = setting("OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS")

    def wanted_on(self, dialect: str) -> bool:
        """Whether ``mode`` asks for rollups on a database of ``dialect``."""
        return self.mode == "on" or (self.mode == "auto" and dialect != "sqlite")


@dataclass(frozen=True)
class DashboardConfig(_ReadByTable):
    """Validated plugin settings (see docs/configuration.md): the groups of the live feed
    and the rollups, then the dashboard's own. ``from_mapping`` reads every key."""

    stream: StreamSettings = field(default_factory=StreamSettings)
    rollups: RollupSettings = field(default_factory=RollupSettings)
    providers: tuple[str, ...] | None = setting("OMNI_DASHBOARD_PROVIDERS")
    missing_tables: str = setting("OMNI_DASHBOARD_MISSING_TABLES")
    timezone: str = setting("OMNI_DASHBOARD_TIMEZONE")
    timeline_max_buckets: int = setting("OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS")
    cache_seconds: int = setting("OMNI_DASHBOARD_CACHE_SECONDS")
    statement_timeout_ms: int = setting("OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS")
    metrics_path: str | None = setting("OMNI_DASHBOARD_METRICS_PATH")
