"""``python -m local.lucca_simulator``: serve the simulated inbox API until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from .config import WRITE_SHAPE_LUCCA_FR, WRITE_SHAPES, ConfigError, SimulatorConfig
from .server import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.lucca_simulator",
        description="Local simulator of the Lucca Cleemy Procurement inbox API (127.0.0.1).",
    )
    add = parser.add_argument
    add("--port", type=int, default=8900, help="0 picks a free port (default 8900)")
    add("--invoices", type=int, default=200, help="documents in the seeded inbox")
    add("--seed", type=int, default=7)
    add("--api-key", default="sim-api-key")
    add("--rate-limit", type=int, default=50, help="requests per window per tenant")
    add("--window", type=float, default=60.0, help="rate-limit window in seconds")
    add("--external", type=int, default=0, help="requests per window by another integration")
    add("--latency-ms", type=float, default=0.0)
    add("--fault-rate", type=float, default=0.0, help="share of API requests faulted (0..1)")
    add("--fault-kinds", default=None, help="weights, e.g. 429=2,503=1,drop=1")
    add("--slow-seconds", type=float, default=6.0)
    add("--retry-after-format", choices=("seconds", "http-date"), default="seconds")
    add("--book-success-status", type=int, choices=(200, 204), default=200)
    add(
        "--write-shape",
        choices=sorted(WRITE_SHAPES),
        default=WRITE_SHAPE_LUCCA_FR,
        help="which published PUT body the server follows",
    )
    # The unknowns and inferences of lucca-api.md, one answer each (see config.py).
    add("--document-id-offset", type=int, default=500_000, help="document.id minus item id")
    add("--get-route", choices=("present", "absent"), default="present")
    add("--absent-get-status", type=int, choices=(404, 405), default=405)
    add("--published-route", choices=("present", "absent"), default="present")
    add("--published-key", choices=("document", "item"), default="document")
    add("--absent-published-status", type=int, choices=(404, 405), default=404)
    add("--second-book", type=int, choices=(400, 404), default=404)
    add("--listing-order", choices=("id", "reverse", "shuffled"), default="id")
    add("--new-documents", choices=("in_order", "first", "last"), default="in_order")
    add("--verbose", action="store_true", help="log every request to stderr")
    return parser


def _fault_kinds(text: str) -> dict[str, float]:
    kinds = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        kinds[name.strip()] = float(weight or 1)
    return kinds


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = {
        "port": args.port,
        "invoices": args.invoices,
        "seed": args.seed,
        "api_key": args.api_key,
        "rate_limit": args.rate_limit,
        "window_seconds": args.window,
        "external_requests_per_window": args.external,
        "latency_ms": args.latency_ms,
        "fault_rate": args.fault_rate,
        "slow_seconds": args.slow_seconds,
        "retry_after_format": args.retry_after_format,
        "book_success_status": args.book_success_status,
        "write_shape": args.write_shape,
        "document_id_offset": args.document_id_offset,
        "get_route": args.get_route,
        "absent_get_status": args.absent_get_status,
        "published_route": args.published_route,
        "published_key": args.published_key,
        "absent_published_status": args.absent_published_status,
        "second_book": args.second_book,
        "listing_order": args.listing_order,
        "new_documents": args.new_documents,
    }
    try:
        if args.fault_kinds:
            settings["fault_kinds"] = _fault_kinds(args.fault_kinds)
        config = SimulatorConfig().updated(settings)
    except (ConfigError, ValueError) as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    simulator = Simulator(config, verbose=args.verbose).start()
    print(f"Lucca simulator listening on {simulator.url}", flush=True)
    print(f"API key: {simulator.api_key}  (Authorization: lucca application={simulator.api_key})")
    print(f"Ground truth: {simulator.url}/_sim/state   (Ctrl-C to stop)", flush=True)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
