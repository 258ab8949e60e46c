"""Round trip of a bare request to real OBS Studio (29, obs-websocket v5) under Xvfb, through anchor's
supervised connection.

    .venv/bin/python benchmarks/obs_roundtrip.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anchor.outputs.obs.connection import ObsConnection  # noqa: E402
from tests.obs_fixture import ObsStudio  # noqa: E402


async def measure(obs: ObsStudio, requests: int) -> dict[str, list[float]]:
    connection = ObsConnection("bench", obs.host, obs.port, obs.password)
    await connection.start()
    try:
        await connection.wait_connected(15)
        found: dict[str, list[float]] = {}
        for request in ("GetVersion", "GetCurrentProgramScene"):
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                await connection.call(request)
                times.append((time.perf_counter() - started) * 1000)
            found[request] = sorted(times)
        return found
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with ObsStudio() as obs:
        found = asyncio.run(measure(obs, args.requests))
    for request, times in found.items():
        q = statistics.quantiles(times, n=100, method="inclusive")
        print(f"{request:24} p50 {q[49]:6.2f}  p95 {q[94]:6.2f}  p99 {q[98]:6.2f}  max {times[-1]:6.2f}  "
              f"(ms, n={len(times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
