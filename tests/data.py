"""Seeded data for the tests: generated rows, inserted, and kept as dicts for the oracle."""

from dataclasses import dataclass

from host_example.seed import (
    DEAD_COLUMNS,
    EVENT_COLUMNS,
    LOG_COLUMNS,
    PAYLOAD_COLUMNS,
    Generator,
    SeedPlan,
    seed,
)


@dataclass
class Dataset:
    events: list
    logs: list
    dead_letters: list
    payloads: list
    instances: list


def seeded(engine, plan: SeedPlan) -> Dataset:
    """Seed ``engine`` with ``plan`` and return the same rows, regenerated, as dicts."""
    seed(engine, plan)
    gen = Generator(plan, plan.now)
    counts = plan.counts()

    def rows(columns, tuples):
        return [dict(zip(columns, row, strict=True)) for row in tuples]

    return Dataset(
        events=rows(EVENT_COLUMNS, gen.events()),
        logs=rows(LOG_COLUMNS, gen.automation_logs(counts["automation_logs"])),
        dead_letters=rows(DEAD_COLUMNS, gen.dead_letters(counts["dead_letter_events"])),
        payloads=rows(PAYLOAD_COLUMNS, gen.payloads(counts["event_payloads"])),
        instances=[
            {"id": i, "name": n, "channel": c, "is_active": a} for i, n, c, a in gen.instance_rows
        ],
    )
