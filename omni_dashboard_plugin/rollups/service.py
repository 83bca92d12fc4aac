"""The rollups of one app, a Flask extension: install (DDL), readers, refresh.

``init_app`` only reads the settings. The tables and triggers are created by
:meth:`Rollups.install`, a deploy step: ``flask omni-dashboard install`` (see
:mod:`.commands`) or the host's own migration code. At start-up (``Dashboard.started``)
:meth:`Rollups.start` only checks that they are there.
"""

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect

from ..config import ConfigError, RollupSettings
from ..sql.standby import ReadOnlyDatabase, read_only
from ..sql.tables import metadata as host_tables
from . import dead_letter_counts, tail
from .ahead import Questions
from .kinds import PREFIX, metadata
from .opening import Opening, Sources, open_read
from .reader import RawReader, RollupReader, lags
from .refresh import RefreshReport, refresh, reset
from .removal import drop_plugin_objects
from .state import horizon_slot, read_watermark, usable_range
from .triggers import drop_older_layouts
from .vacuum import keep_pages

log = logging.getLogger(__name__)

EXTENSION_KEY = "omni_dashboard_rollups"
# The request path starts at most one background refresh per process in this interval.
REFRESH_INTERVAL_SECONDS = 30
# The operator's commands (yourapp: the app's import path, as for `flask run`).
COMMAND = "flask --app yourapp omni-dashboard"
INSTALL_HINT = f"run `{COMMAND} install` (or call Rollups.install() in your migrations)"
# The host's tables the rollups read (their kinds' sources and parents, the dead letters).
TABLES = tuple(host_tables.tables)
_installing = contextvars.ContextVar("omni_dashboard_installing", default=False)


@contextlib.contextmanager
def installing():
    """Within it, :meth:`Rollups.start` does not require the tables: the app is loaded
    to install them."""
    token = _installing.set(True)
    try:
        yield
    finally:
        _installing.reset(token)


_GONE = object()


def _missing_tables(missing: list[str]) -> str:
    """How many of the plugin's tables are missing, and the first of them."""
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    return f"{len(missing)} of {len(metadata.tables)} missing: {shown}"


def _read_watermark_if_installed(connection, opening: Opening | None):
    """:func:`read_watermark`, or ``_GONE`` when the state table was dropped under the app
    (an uninstall): PostgreSQL's ``opening`` asked first (a failed statement would abort
    the request's transaction), SQLite answers with an error that leaves it usable."""
    if opening is not None:
        return read_watermark(connection) if opening.installed else _GONE
    try:
        return read_watermark(connection)
    except sa_exc.OperationalError as exc:
        if "no such table" not in str(exc.orig):
            raise
        return _GONE


def _raw(connection, opening: Opening | None, **options) -> RawReader:
    """A reader of raw rows, with the parallel workers the opening turned off back on
    (a raw scan of a large table uses them)."""
    if opening is not None:
        opening.restore_workers(connection)
    return RawReader(connection, **options)


class Rollups:
    """Decides whether reads use rollups, installs them and keeps them fresh.

    ``mode`` ``off`` never touches the database; ``on`` requires the tables (start-up
    stops when they are missing, and ``install`` when it cannot create them); ``auto`` uses
    them on PostgreSQL once installed, and runs with rollups off where they are not (and
    on SQLite). ``on_refresh(seconds)`` is told how long each refresh that ran took (not
    one that found another process refreshing).
    """

    def __init__(self, engine, clock, on_refresh=None):
        self.engine = engine
        self.on_refresh = on_refresh
        self.settings = RollupSettings(mode="off")
        self.clock = clock
        self.active = False
        self.keeps_dead_letters = False
        self._next_check = float("-inf")
        self._thread: threading.Thread | None = None
        self._last_start = float("-inf")
        self._guard = threading.Lock()
        self._unused: str | None = None
        self._sources = Sources()  # what each endpoint's rollup reads probe up front
        self._questions = Questions()  # what each endpoint's responses ask (read ahead)

    def init_app(self, app, *, used: bool = True, lacking: Collection[str] = ()) -> None:
        """Read the settings from ``app.config``; ``used=False`` (nothing of the plugin
        reads rollups) keeps them off, and so does a host table of :data:`TABLES` in
        ``lacking`` (with ``on``: :class:`ConfigError`). No database work."""
        settings = RollupSettings.from_mapping(app.config)
        missing = [table for table in TABLES if table in lacking]
        if missing and used and settings.mode == "on":
            raise ConfigError(
                f"OMNI_DASHBOARD_ROLLUPS=on, but the rollups read {', '.join(missing)}, which "
                "the database lacks (or lacks columns of; docs/host-integration.md): create "
                "them, or set OMNI_DASHBOARD_ROLLUPS=auto to run without rollups"
            )
        self.settings = settings if used and not missing else RollupSettings(mode="off")
        self._unused = None
        if not used:
            self._unused = "nothing enabled reads them (OMNI_DASHBOARD_PROVIDERS=none?)"
        elif missing:
            self._unused = f"the database lacks {', '.join(missing)}, which they read"
        app.extensions[EXTENSION_KEY] = self

    @property
    def horizon(self) -> timedelta:
        """Rows younger than this are always read raw (``horizon_minutes``)."""
        return timedelta(minutes=self.settings.horizon_minutes)

    @property
    def off_reason(self) -> str:
        """Why rollups are not wanted here (when :attr:`wanted` is false)."""
        mode = self.settings.mode
        return self._unused or f"OMNI_DASHBOARD_ROLLUPS={mode} on {self.engine.dialect.name}"

    @property
    def wanted(self) -> bool:
        """Whether the settings ask for rollups on this database."""
        return self.settings.wanted_on(self.engine.dialect.name)

    def install(self) -> bool:
        """Create the tables (and the dead-letter triggers, or drop them when told to
        count raw); idempotent, safe to run from several processes at once. Returns whether
        rollups are on.

        Raises :class:`ConfigError` with ``mode`` ``on`` when they cannot be created; with
        ``auto`` that is a warning and rollups stay off.
        """
        if not self.wanted:
            return False
        try:
            if self.read_only():
                log.info(
                    "the database is read-only (a hot standby): the rollup tables are "
                    "installed and refreshed on the primary, and only read here"
                )
                self._check(strict=False)
                return self.active
            metadata.create_all(self.engine)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            log.warning("rollup tables not installed, the database is unreachable: %s", exc.orig)
            return False
        except sa_exc.DBAPIError as exc:
            if self.settings.mode == "on":
                raise ConfigError(
                    f"OMNI_DASHBOARD_ROLLUPS=on, but the rollup tables cannot be created "
                    f"({exc.orig}); grant CREATE on the schema to the database user, or set "
                    "OMNI_DASHBOARD_ROLLUPS=off (or auto, which then runs without rollups)"
                ) from exc
            log.warning("rollups off: their tables cannot be created (%s)", exc.orig)
            return False
        self._drop_older_layouts()
        self._keep_pages()
        self._keep_triggers()
        self.active = True
        return True

    def _drop_older_layouts(self) -> None:
        """Drop the triggers of earlier layouts: they would go on writing into tables no
        read uses (their tables are left to the operator, see docs/rollups.md)."""
        try:
            with self.engine.begin() as connection:
                dropped = drop_older_layouts(connection, PREFIX)
        except sa_exc.DBAPIError as exc:
            log.warning("the triggers of earlier rollup layouts could not be dropped: %s", exc.orig)
            return
        for statement in dropped:
            log.info("earlier rollup layout: %s", statement)

    def _keep_pages(self) -> None:
        """Tell VACUUM (a host's autovacuum too) not to cut the tables every fold rewrites:
        that takes a lock every read of the tail waits behind (see :mod:`.vacuum`)."""
        try:
            with self.engine.begin() as connection:
                altered = keep_pages(connection)
        except sa_exc.DBAPIError as exc:
            log.warning("the rollups' own tables could not be altered: %s", exc.orig)
            return
        for statement in altered:
            log.info("rollup table option: %s", statement)

    def read_only(self) -> bool:
        """Whether the database takes no writes (a hot standby): install, refresh and
        reset run against the primary, and this process only reads the rollups."""
        with self.engine.connect() as connection:
            return read_only(connection)

    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyDatabase` when the database takes no writes."""
        if self.read_only():
            raise ReadOnlyDatabase(
                f"{self.engine.url.render_as_string()} is read-only (a hot standby?): the "
                "rollups are installed, refreshed and reset on the primary"
            )

    def uninstall(self) -> list[str]:
        """Drop every object of the plugin, whatever the settings: its triggers on the
        host's tables, its functions and its tables, of any layout, as the catalog lists
        them (rollups are off after). Returns the statements run."""
        self.check_writable()
        with self.engine.begin() as connection:
            dropped = drop_plugin_objects(connection)
        self.active = self.keeps_dead_letters = False
        return dropped

    def start(self) -> None:
        """Check that the tables are installed (no DDL; nothing to check after an
        :meth:`install` of this process); see the class docstring.

        When the database is unreachable, or ``auto`` finds no tables, reads use raw rows
        and a request checks again (at most every ``REFRESH_INTERVAL_SECONDS``), so that a
        later ``install`` or a database back up is picked up without a restart.
        """
        if not self.active:
            self._check(strict=not _installing.get())

    def _check(self, *, strict: bool) -> None:
        self._next_check = time.monotonic() + REFRESH_INTERVAL_SECONDS
        if not self.wanted:
            return
        try:
            names = set(inspect(self.engine).get_table_names())
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            log.warning("rollup tables not checked, the database is unreachable: %s", exc.orig)
            return
        missing = sorted(set(metadata.tables) - names)
        if missing and strict:
            if self.settings.mode == "on":
                raise ConfigError(
                    f"OMNI_DASHBOARD_ROLLUPS=on, but the rollup tables are not installed: "
                    f"{INSTALL_HINT}, or set OMNI_DASHBOARD_ROLLUPS=auto to run without them "
                    f"until then ({_missing_tables(missing)})"
                )
            log.warning("rollups off until they are installed: %s", INSTALL_HINT)
        self.active = not missing
        if self.active and self.settings.dead_letters == "triggers":
            with self.engine.connect() as connection:
                self.keeps_dead_letters = dead_letter_counts.installed(connection)

    def _keep_triggers(self) -> None:
        """Install the dead-letter and tail triggers, or remove them when told to read raw."""
        if self.settings.dead_letters == "triggers":
            self.keeps_dead_letters = dead_letter_counts.install(self.engine)
        else:
            dead_letter_counts.uninstall(self.engine)
            self.keeps_dead_letters = False
        if self.settings.tail == "triggers":
            tail.install(self.engine, self.settings.tail_margin_seconds)
        else:
            tail.uninstall(self.engine)

    def reader(self, connection, now, *, snapshot: bool = False) -> RawReader:
        """A reader for one request at ``now``: rollups plus the raw tail when active.

        ``snapshot`` says that every statement on ``connection`` reads one snapshot
        (:func:`..sql.snapshot.snapshot`), which lets the reader use total tables.
        """
        if not self.active and self.wanted and time.monotonic() >= self._next_check:
            self._check(strict=False)
        if not self.active:
            return RawReader(connection)
        opening = None
        if connection.dialect.name == "postgresql":
            opening = open_read(connection, self._sources.known())
        mark = _read_watermark_if_installed(connection, opening)
        reader = self._reader(connection, now, snapshot, opening, mark)
        # What it read of the watermark, in this snapshot (the collector's lag gauge).
        reader.watermark = None if mark is _GONE else mark
        return reader

    def _reader(self, connection, now, snapshot, opening, mark) -> RawReader:
        """The reader for ``mark``, the watermark read in this snapshot (or ``_GONE``)."""
        if mark is _GONE:
            log.warning("rollup tables gone (uninstalled?), reads use raw rows until they are back")
            self.active = self.keeps_dead_letters = False
            self._next_check = time.monotonic() + REFRESH_INTERVAL_SECONDS
            return _raw(connection, opening)
        # Behind, or a kept tail to fold (at most every REFRESH_INTERVAL_SECONDS).
        if self.settings.refresh == "request" and (
            mark is None
            or mark.watermark_slot < horizon_slot(now, self.horizon)
            or mark.tail is not None
        ):
            self._refresh_in_background()
        rolled = None if mark is None else usable_range(mark, now, self.horizon)
        if rolled is None or lags(rolled, now):  # not yet, or far behind: as rollups off
            return _raw(connection, opening, dead_letters=self.keeps_dead_letters)
        totals = mark.totals if snapshot else None
        return RollupReader(
            connection,
            rolled,
            totals,
            dead_letters=self.keeps_dead_letters,
            tail=mark.tail,
            now=now,
            oldest=opening.oldest if opening is not None else None,
            sources=self._sources,
            asking=self._questions.asking(now),
            workers_off=opening is not None,
        )

    def refresh(self, **options) -> RefreshReport:
        """Roll up every closed slot before ``now - horizon`` (see :func:`.refresh.refresh`).

        Raises :class:`ReadOnlyDatabase` on a hot standby, before any write.
        """
        self.check_writable()
        began = time.perf_counter()
        if self.active:  # put back triggers a migration of the host's tables dropped
            self._keep_triggers()
        report = refresh(self.engine, self.clock(), self.horizon, **options)
        if self.on_refresh is not None and not report.busy:
            self.on_refresh(time.perf_counter() - began)
        return report

    def reset(self) -> None:
        """Drop the rolled rows and the watermark (after history was rewritten), and count
        the kept dead letters again; the next refresh rolls everything up again."""
        self.check_writable()
        reset(self.engine)
        if self.keeps_dead_letters:
            dead_letter_counts.recount(self.engine)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for this process's background refresh, if one runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _refresh_in_background(self) -> None:
        with self._guard:
            running = self._thread is not None and self._thread.is_alive()
            if running or time.monotonic() - self._last_start < REFRESH_INTERVAL_SECONDS:
                return
            self._last_start = time.monotonic()
            self._thread = threading.Thread(
                target=self._refresh_logged, name="omni-dashboard-rollups", daemon=True
            )
            self._thread.start()

    def _refresh_logged(self) -> None:
        try:
            report = self.refresh()
            log.info("rollups refreshed: %s chunks, watermark %s", report.chunks, report.watermark)
        except ReadOnlyDatabase:
            log.debug("no rollup refresh on a read-only database: the primary's refresh serves")
        except sa_exc.DBAPIError as exc:
            log.warning("rollup refresh failed, reads use more raw rows until it works: %s", exc)
