"""Benchmark: reading the recorded hourly candle files through the parsed-candle cache.

Reads every Binance hourly file of the shared data (33 pairs, 1.2 M rows) three ways, in one
process, on the same bytes, and prints the time of each and the ratios:

* parse: the JSON parse and checks the reader does without a cache (``orjson`` into numpy);
* cache hit: what a later process pays once the cache holds them (read the bytes, digest them,
  load and verify the stored arrays);
* yardstick: reading the bytes and digesting them alone, the floor any content-keyed cache pays.

The cache folder is a temporary one (the user's cache is not touched). Median of ``--repeat``
runs; CPU time of this process.

    uv run python bench/bench_candle_cache.py [--data DIR] [--repeat N]

No asserts on timing: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptosmarttrader.adapters import candle_cache, recorded_data


def _timed(fn: object, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        fn()  # type: ignore[operator]
        runs.append(time.process_time() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("CST_DATA_DIR", "../shared/data"))
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted((args.data / "binance_spot" / "1h").glob("*_USDT-1h.json"))
    if not files:
        raise SystemExit(f"no hourly candle files under {args.data / 'binance_spot' / '1h'}")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CST_CACHE_DIR"] = tmp
        os.environ.pop("CST_CANDLE_CACHE", None)
        folder = candle_cache.cache_folder()
        assert folder is not None
        rows = sum(recorded_data._load_array(f).shape[0] for f in files)  # fills the cache

        def parse() -> None:
            for f in files:
                recorded_data._parse_array(f, f.read_bytes())

        def hit() -> None:
            for f in files:
                assert recorded_data._load_array(f) is not None

        def yardstick() -> None:
            for f in files:
                recorded_data._cache_key(f.read_bytes())

        t_parse, t_hit, t_floor = (_timed(fn, args.repeat) for fn in (parse, hit, yardstick))

    print(f"{len(files)} hourly files, {rows:,} rows (median of {args.repeat}, CPU s)")
    print(f"  parse      {t_parse:7.3f} s  {rows / t_parse / 1e6:6.2f} M rows/s")
    print(f"  cache hit  {t_hit:7.3f} s  {rows / t_hit / 1e6:6.2f} M rows/s")
    print(f"  yardstick  {t_floor:7.3f} s  (read + digest the bytes)")
    print(
        f"  parse / cache hit: {t_parse / t_hit:5.1f}x; cache hit / yardstick: {t_hit / t_floor:4.1f}x"
    )


if __name__ == "__main__":
    main()
