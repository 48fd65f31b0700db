"""`python -m tooling.pleo_sim --job <uuid>:<items>`: run the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import time

from tooling.pleo_sim.app import PleoSimulator, RateLimit
from tooling.pleo_sim.jobs import SimJob
from tooling.pleo_sim.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--job",
        action="append",
        default=[],
        metavar="ID:ITEMS[:STATUS]",
        help="seed a job with that many generated items (status defaults to in_progress)",
    )
    parser.add_argument("--max-limit", type=int, default=1000)
    parser.add_argument(
        "--rate-limit",
        type=int,
        metavar="PER_MINUTE",
        help="answer 429 with Retry-After past this many requests in any minute",
    )
    args = parser.parse_args()
    rate_limit = RateLimit(args.rate_limit) if args.rate_limit else None
    simulator = PleoSimulator(max_limit=args.max_limit, rate_limit=rate_limit)
    for spec in args.job:
        job_id, items, *status = spec.split(":")
        simulator.add_job(
            SimJob(
                job_id, status=status[0] if status else "in_progress", generated_items=int(items)
            )
        )
    with serve(simulator, args.host, args.port) as base_url:
        print(f"Pleo simulator on {base_url} (API key 'sim-api-key', token 'sim-access-token')")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
