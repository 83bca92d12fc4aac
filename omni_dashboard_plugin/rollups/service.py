"""The rollups of one app: start-up (mode, tables), readers for requests, refresh."""

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import exc as sa_exc

from ..config import ConfigError, RollupSettings
from . import dead_letter_counts
from .kinds import metadata
from .reader import RawReader, RollupReader
from .refresh import RefreshReport, refresh, reset
from .state import horizon_slot, read_watermark, usable_range

log = logging.getLogger(__name__)

# The request path starts at most one background refresh per process in this interval.
REFRESH_INTERVAL_SECONDS = 30


class Rollups:
    """Decides whether reads use rollups, and keeps them fresh.

    ``mode`` ``off`` never touches the database; ``on`` creates the plugin's tables at
    start-up (failing start-up when it cannot); ``auto`` does so on PostgreSQL and runs
    with rollups off where the tables cannot be created, and on SQLite.
    ``on_refresh(seconds)`` is told how long each refresh that ran took (not one that found
    another process refreshing).
    """

    def __init__(self, engine, settings: RollupSettings, clock, on_refresh=None):
        self.engine = engine
        self.on_refresh = on_refresh
        self.settings = settings
        self.clock = clock
        self.horizon = timedelta(minutes=settings.horizon_minutes)
        self.active = False
        self.keeps_dead_letters = False
        self._unchecked = False
        self._thread: threading.Thread | None = None
        self._last_start = float("-inf")
        self._guard = threading.Lock()

    def start(self) -> None:
        """Resolve the mode and create the tables (idempotent); see the class docstring.

        When the database is unreachable, reads use raw rows and the first request after
        it is back creates the tables.
        """
        mode = self.settings.mode
        if mode == "off" or (mode == "auto" and self.engine.dialect.name == "sqlite"):
            return
        try:
            metadata.create_all(self.engine)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            log.warning("rollup tables not checked, the database is unreachable: %s", exc.orig)
            self._unchecked = True
            return
        except sa_exc.DBAPIError as exc:
            if mode == "on":
                raise ConfigError(
                    f"OMNI_DASHBOARD_ROLLUPS=on, but the rollup tables cannot be created "
                    f"({exc.orig}); grant CREATE on the schema to the database user, or set "
                    "OMNI_DASHBOARD_ROLLUPS=off (or auto, which then runs without rollups)"
                ) from exc
            log.warning("rollups off: their tables cannot be created (%s)", exc.orig)
            return
        self._unchecked = False
        self.active = True
        self._keep_dead_letters()

    def _keep_dead_letters(self) -> None:
        """Install the dead-letter triggers, or remove them when told to count raw."""
        if self.settings.dead_letters == "triggers":
            self.keeps_dead_letters = dead_letter_counts.install(self.engine)
        else:
            dead_letter_counts.uninstall(self.engine)

    def reader(self, connection, now, *, snapshot: bool = False) -> RawReader:
        """A reader for one request at ``now``: rollups plus the raw tail when active.

        ``snapshot`` says that every statement on ``connection`` reads one snapshot
        (:func:`..sql.snapshot.snapshot`), which lets the reader use total tables.
        """
        if self._unchecked:
            self.start()
        if not self.active:
            return RawReader(connection)
        mark = read_watermark(connection)
        if self.settings.refresh == "request" and (
            mark is None or mark.watermark_slot < horizon_slot(now, self.horizon)
        ):
            self._refresh_in_background()
        if mark is None:
            return RawReader(connection, dead_letters=self.keeps_dead_letters)
        totals = mark.totals if snapshot else None
        return RollupReader(
            connection,
            usable_range(mark, now, self.horizon),
            totals,
            dead_letters=self.keeps_dead_letters,
        )

    def refresh(self, **options) -> RefreshReport:
        """Roll up every closed slot before ``now - horizon`` (see :func:`.refresh.refresh`)."""
        began = time.perf_counter()
        report = refresh(self.engine, self.clock(), self.horizon, **options)
        if self.active:  # put back triggers a migration of dead_letter_events dropped
            self._keep_dead_letters()
        if self.on_refresh is not None and not report.busy:
            self.on_refresh(time.perf_counter() - began)
        return report

    def reset(self) -> None:
        """Drop the rolled rows and the watermark (after history was rewritten); the next
        refresh rolls everything up again."""
        reset(self.engine)

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
        except sa_exc.DBAPIError as exc:
            log.warning("rollup refresh failed, reads use more raw rows until it works: %s", exc)
