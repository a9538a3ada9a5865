"""First render of every dashboard page in headless Chromium, over the local API.

Builds a state the way a trader gets one (`cst demo` on the real recorded data: scan, orders,
fills, equity points), then publishes a scan of the FULL CoinGecko universe for the same day so
the signals page renders every ranked coin. It serves that state with `cst api serve`'s server
(API + built dashboard, same origin) and opens each page in a fresh browser context (cold cache,
key already in the session), timing navigation → the page's data rendered (`#app` no longer
busy). The reference in the same run is a blank page load: a tiny static file from the same
server. Prints the median of --repeat runs per page and its ratio to the reference.
Target: every page's median first render < 1 s.

    uv run python bench/bench_web.py [--state-dir DIR] [--repeat 5]

Needs Debian's Chromium (/usr/bin/chromium) and the built dashboard (make web).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from cryptosmarttrader.cli import app as cli_app
from cryptosmarttrader.cli.api import DEFAULT_WEB_DIR, local_api, make_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET_MS = 1000.0


def build_state(state: Path) -> str:
    """The demo's state plus a full-universe scan of its decision day; returns the coin."""
    runner = CliRunner()
    with contextlib.redirect_stdout(io.StringIO()):
        demo = runner.invoke(cli_app, ["demo", "--state-dir", str(state), "--ingest-bars", "20"])
    if demo.exit_code != 0:
        sys.exit(f"demo failed: {demo.stderr or demo.stdout}")
    day = next(
        line.split("as of ")[1][:10]
        for line in demo.stdout.splitlines()
        if "2. scan Lambda: scheduled run as of" in line
    )
    os.environ["CST_UNIVERSE"] = "all"
    scan = runner.invoke(
        cli_app, ["scan", "--state-dir", str(state), "--asof", day, "--top", "1000", "--json"]
    )
    if scan.exit_code != 0:
        sys.exit(f"full-universe scan failed: {scan.stderr or scan.stdout}")
    filled = next((line for line in demo.stdout.splitlines() if "FILLED" in line), "")
    return filled.split("│")[1].strip() if "│" in filled else "bitcoin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, help="use this state (copied) instead")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file() or not (DEFAULT_WEB_DIR / "index.html").is_file():
        sys.exit(f"needs {CHROMIUM} (apt-get install -y chromium) and the built web/ (make web)")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="cst-bench-web-"))
    state = work / "state"
    if args.state_dir:
        shutil.copytree(args.state_dir, state)
        coin = "bitcoin"
    else:
        print("building the state: cst demo + a full-universe scan (about a minute)…")
        coin = build_state(state)
    key = secrets.token_urlsafe(24)
    pages = ["signals", f"coin/{coin}", "portfolio", "risk", "golive", "models"]
    with local_api(state) as invoke, contextlib.redirect_stdout(io.StringIO()) as logs:
        server = make_server(0, key, invoke, DEFAULT_WEB_DIR)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        base = f"http://{host!s}:{port}"
        results: dict[str, list[float]] = {"reference: blank page (config.json)": []}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(args.repeat):
                for name in ["reference", *pages]:
                    context = browser.new_context()
                    context.add_init_script(f"sessionStorage.setItem('cst-api-key', {key!r})")
                    page = context.new_page()
                    started = time.perf_counter()
                    if name == "reference":
                        page.goto(f"{base}/config.json")
                        results["reference: blank page (config.json)"].append(
                            (time.perf_counter() - started) * 1000
                        )
                    else:
                        page.goto(f"{base}/#/{name}")
                        page.wait_for_selector("#app[aria-busy='false']", timeout=30_000)
                        elapsed = (time.perf_counter() - started) * 1000
                        results.setdefault(name, []).append(elapsed)
                    context.close()
            browser.close()
        server.shutdown()
        server.server_close()
    del logs
    reference = statistics.median(results["reference: blank page (config.json)"])
    print(f"first render, median of {args.repeat} cold loads (ms), ratio to the blank page:")
    worst = 0.0
    for name, times in results.items():
        median = statistics.median(times)
        worst = max(worst, median) if not name.startswith("reference") else worst
        print(f"  {name:40s} {median:8.1f}   x{median / reference:6.1f}   max {max(times):8.1f}")
    print(f"slowest page median {worst:.0f} ms (target < {TARGET_MS:.0f} ms): ", end="")
    print("PASS" if worst < TARGET_MS else "FAIL")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
