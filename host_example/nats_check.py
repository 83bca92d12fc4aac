"""A real NATS reachability check for /health, through nats-py."""

import asyncio

import nats


async def _ping(url: str, timeout: float) -> None:
    async def quiet(_exc):
        return None

    client = await nats.connect(
        url,
        connect_timeout=timeout,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        error_cb=quiet,
    )
    try:
        await client.flush(timeout=timeout)
    finally:
        await client.close()


def nats_reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether a NATS server answers a PING at ``url`` within ``timeout`` seconds."""
    try:
        asyncio.run(asyncio.wait_for(_ping(url, timeout), timeout * 2))
    except Exception:
        return False
    return True
