"""``python -m recon.sandbox``: run the Xero and Nexudus sandboxes in the foreground.

Prints one JSON line on stdout with the base URLs and demo credentials, then
serves until interrupted (Ctrl-C or SIGTERM). Xero answers as slowly as the real
service unless ``RECON_SANDBOX_XERO_LATENCY`` says otherwise (``off``, ``xero`` or
``<per_call>,<per_element>`` seconds).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from recon.sandbox import RateLimits, default_state_dir, start


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox, print its connection line, serve until interrupted; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m recon.sandbox", description=__doc__)
    parser.add_argument(
        "--state-dir", default=None, help=f"state folder (default {default_state_dir()})"
    )
    parser.add_argument("--fresh", action="store_true", help="wipe the state folder and seed anew")
    parser.add_argument(
        "--invoices",
        type=int,
        default=None,
        help="scale the demo business to this many invoices (new state only)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--xero-port", type=int, default=0)
    parser.add_argument("--nexudus-port", type=int, default=0)
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="length of Xero's rate-limit 'minute' (tests: 1)",
    )
    args = parser.parse_args(argv)
    sandbox = start(
        args.state_dir,
        seed=args.seed,
        invoices=args.invoices,
        fresh=args.fresh,
        limits=RateLimits(minute_seconds=args.minute_seconds),
        xero_port=args.xero_port,
        nexudus_port=args.nexudus_port,
    )
    print(json.dumps(sandbox.connection_info()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
