"""API latency under a bounded local load: the `cst api serve` bridge on 127.0.0.1.

Runs the real API handler over the embedded local AWS (a copy of the state directory, so the
user's state is never changed), sends a bounded number of requests per route from a few client
threads (loopback only, stopped after --max-seconds), and prints p50/p95 per route with two
ratios: vs GET /health over HTTP (liveness: the cheapest full path) and vs the same request as a direct
in-process handler call (what the HTTP bridge adds). Pass: every route's p95 < 1 s.

    uv run python bench/bench_api.py [--requests 200] [--clients 4] [--state-dir .cst]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from cryptosmarttrader.cli.api import local_api, make_server, proxy_event

ROUTES = [
    "/health",
    "/api/v1/health",
    "/api/v1/market/overview",
    "/api/v1/signals?limit=20",
    "/api/v1/positions",
    "/api/v1/risk",
]
API_KEY = "bench-key-0123456789abcdef"
P95_TARGET_MS = 1000.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def http_load(port: int, path: str, n: int, clients: int, deadline: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(count):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            conn.request("GET", path, headers={"x-api-key": API_KEY})
            resp = conn.getresponse()
            resp.read()
            elapsed = (time.perf_counter() - started) * 1000.0
            if resp.status >= 500:
                raise RuntimeError(f"{path}: HTTP {resp.status}")
            with lock:
                latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=worker, args=(n // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def direct_load(invoke: Any, path: str, n: int, deadline: float) -> list[float]:
    latencies = []
    for i in range(n):
        if time.monotonic() > deadline:
            break
        event = proxy_event("GET", path, {}, b"", api_key=API_KEY, request_id=f"bench-{i}")
        started = time.perf_counter()
        invoke(event)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per route (max 2000)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (max 16)")
    parser.add_argument("--max-seconds", type=float, default=90.0)
    parser.add_argument("--state-dir", type=Path, default=Path(".cst"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # keep the table readable
    n, clients = min(args.requests, 2000), max(1, min(args.clients, 16))

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        if (args.state_dir / "snapshot.json").is_file():
            state.mkdir()
            shutil.copy2(args.state_dir / "snapshot.json", state / "snapshot.json")
        with local_api(state) as invoke:
            server = make_server(0, API_KEY, invoke)
            port = server.server_address[1]
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            deadline = time.monotonic() + args.max_seconds
            overview = json.loads(invoke(proxy_event(
                "GET", "/api/v1/market/overview", {}, b"", api_key=API_KEY, request_id="probe"
            ))["body"])  # fmt: skip
            print(f"data: latest scan as of {overview['asof']} (universe {overview['universe']}, "
                  f"{len(overview['top_opportunities'])} top opportunities); "
                  f"{n} requests/route, {clients} clients, loopback :{port}")  # fmt: skip
            for path in ROUTES:  # warm-up (cold start of clients and caches)
                direct_load(invoke, path, 3, deadline)
            results = {}
            for path in ROUTES:
                results[path] = (
                    http_load(port, path, n, clients, deadline),
                    direct_load(invoke, path, max(20, n // 4), deadline),
                )
            server.shutdown()
            server.server_close()

    ref_p95 = pct(results["/health"][0], 0.95)
    print(f"{'route':28} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'direct p95':>10} "
          f"{'x direct':>8} {'x /health':>9}")  # fmt: skip
    ok = True
    for path, (http_ms, direct_ms) in results.items():
        p50, p95, d95 = pct(http_ms, 0.5), pct(http_ms, 0.95), pct(direct_ms, 0.95)
        ok &= p95 < P95_TARGET_MS
        print(f"{path:28} {len(http_ms):5d} {p50:8.2f} {p95:8.2f} {d95:10.2f} "
              f"{p95 / d95:8.2f} {p95 / ref_p95:9.2f}")  # fmt: skip
    everything = [v for http_ms, _ in results.values() for v in http_ms]
    print(f"all routes: p50 {statistics.median(everything):.2f} ms, "
          f"p95 {pct(everything, 0.95):.2f} ms (target < {P95_TARGET_MS:.0f} ms): "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
