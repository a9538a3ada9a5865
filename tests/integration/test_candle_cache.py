"""The parsed-candle cache serves only the parse of the very bytes it is asked for.

Real recorded files (copied into a temp dir), a cache folder of each test's own
(``CST_CACHE_DIR``), and the in-process cache of parsed frames emptied where a test reads a file
twice.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from cryptosmarttrader.adapters import candle_cache, recorded_data
from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData

pytestmark = pytest.mark.realdata


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CST_CANDLE_CACHE", raising=False)
    monkeypatch.setattr(recorded_data, "_PARSED", {})
    folder = candle_cache.cache_folder()
    assert folder is not None
    return folder


@pytest.fixture
def hourly(data_dir: Path, tmp_path: Path) -> Path:
    """A copy of one recorded hourly file (tens of thousands of rows)."""
    copy = tmp_path / "files" / "ETH_USDT-1h.json"
    copy.parent.mkdir()
    shutil.copyfile(data_dir / "binance_spot" / "1h" / "ETH_USDT-1h.json", copy)
    return copy


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npy")) if folder.is_dir() else []


def _refuse_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, body: bytes) -> np.ndarray:
        raise AssertionError(f"{path} was parsed, not read from the cache")

    monkeypatch.setattr(recorded_data, "_parse_array", refuse)


def test_the_same_bytes_at_another_path_load_from_the_cache_unparsed(
    cache: Path, hourly: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file read once (parsed and stored)
    parsed = recorded_data._load_array(hourly)
    assert parsed.shape[0] > 20_000 and len(_entries(cache)) == 1
    # When a copy of it is read at another path with parsing refused
    copy = hourly.with_name("copy.json")
    shutil.copyfile(hourly, copy)
    _refuse_parsing(monkeypatch)
    cached = recorded_data._load_array(copy)
    # Then the array is the parse, bit for bit (NaN where the file has null)
    assert cached.dtype == np.float64 and cached.shape == parsed.shape
    assert np.array_equal(cached, parsed, equal_nan=True)


def test_a_frame_read_through_the_cache_is_the_frame_parsed(
    cache: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = datetime(2021, 5, 1, tzinfo=UTC), datetime(2021, 6, 1, tzinfo=UTC)
    parsed = RecordedMarketData(data_dir).ohlcv("SOL/USDT", "1h", start, end)
    monkeypatch.setattr(recorded_data, "_PARSED", {})
    _refuse_parsing(monkeypatch)
    cached = RecordedMarketData(data_dir).ohlcv("SOL/USDT", "1h", start, end)
    assert cached.equals(parsed) and cached.height == parsed.height > 700


def test_a_damaged_file_with_the_same_size_and_times_is_parsed_again_and_refused(
    cache: Path, hourly: Path
) -> None:
    # Given a file read once and cached
    recorded_data._load_array(hourly)
    st = hourly.stat()
    # When one digit becomes a quote, the size and the modification time kept
    body = bytearray(hourly.read_bytes())
    at = body.index(b",", 100) + 1
    body[at : at + 1] = b'"'
    hourly.write_bytes(bytes(body))
    os.utime(hourly, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hourly.stat().st_size == st.st_size
    # Then it is refused with its reason, not served from the cache
    with pytest.raises(DataSourceError, match=r"non-numeric value|malformed"):
        recorded_data._load_array(hourly)


def test_a_file_that_fails_is_never_stored(cache: Path, hourly: Path) -> None:
    hourly.write_bytes(hourly.read_bytes()[:-40])  # truncated
    for _ in range(2):
        with pytest.raises(DataSourceError, match="malformed or truncated JSON"):
            recorded_data._load_array(hourly)
    assert _entries(cache) == []


def test_a_ragged_row_is_named_as_before(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "ragged.json"
    path.write_text("[[1609459200000,1,2,0.5,1.5,10],[1609462800000,1,2,0.5,1.5]]")
    with pytest.raises(DataSourceError, match=r"row 1 has 5 values, expected 6 .*\(1 bad row"):
        recorded_data._load_array(path)
    path.write_text("[[1609459200000,1,2,0.5,1.5,10],[[1],[2],[3],[4],[5],[6]]]")
    with pytest.raises(DataSourceError, match="non-numeric value"):
        recorded_data._load_array(path)
    path.write_text("[[1609459200000,1,2,0.5,1.5,1" + "0" * 400 + "]]")
    with pytest.raises(DataSourceError, match="non-numeric value"):
        recorded_data._load_array(path)
    assert _entries(cache) == []


@pytest.mark.parametrize(
    "damage", ["altered", "torn", "wrong shape", "altered header", "header of too many rows"]
)
def test_a_damaged_entry_is_deleted_and_the_file_parsed_again(
    cache: Path, hourly: Path, damage: str
) -> None:
    # Given a cached file whose entry is then damaged
    parsed = recorded_data._load_array(hourly)
    (entry,) = _entries(cache)
    if damage == "altered":  # one close price changed, the name (its digest) kept
        altered = parsed.copy()
        altered[100, 4] *= 1.5
        with entry.open("wb") as out:
            np.save(out, altered)
    elif damage == "torn":
        entry.write_bytes(entry.read_bytes()[:1000])
    elif damage == "altered header":  # one byte of the header changed: ")" became "("
        raw = entry.read_bytes()
        at = raw.index(b")")
        entry.write_bytes(raw[:at] + b"(" + raw[at + 1 :])
    elif damage == "header of too many rows":  # more rows than memory could hold
        raw = entry.read_bytes()
        shape, huge = f"({parsed.shape[0]}, 6)".encode(), b"(10000000000000, 6)"
        raw = raw.replace(shape, huge).replace(b" " * (len(huge) - len(shape)) + b"\n", b"\n", 1)
        assert len(raw) == entry.stat().st_size
        entry.write_bytes(raw)
    else:
        with entry.open("wb") as out:
            np.save(out, parsed[:, :5])
    # When the file is read again
    again = recorded_data._load_array(hourly)
    # Then it is the true parse, and the cache holds a sound entry of it again
    assert np.array_equal(again, parsed, equal_nan=True)
    (fresh,) = _entries(cache)
    key = recorded_data._cache_key(hourly.read_bytes())
    assert key is not None
    assert fresh.name.startswith(key) and np.array_equal(
        candle_cache.load(cache, key), parsed, equal_nan=True
    )


def test_an_unwritable_folder_reads_as_without_a_cache(
    hourly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CST_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(recorded_data, "_PARSED", {})
    assert recorded_data._load_array(hourly).shape[0] > 20_000
    assert not list(tmp_path.rglob("*.npy"))


def test_the_cache_can_be_turned_off(
    hourly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CST_CANDLE_CACHE", "false")
    assert candle_cache.cache_folder() is None
    recorded_data._load_array(hourly)
    assert not (tmp_path / "cache").exists()


def test_the_default_folder_is_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CST_CACHE_DIR", raising=False)
    monkeypatch.delenv("CST_CANDLE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert candle_cache.cache_folder() == tmp_path / "xdg" / "cryptosmarttrader" / "candles-v1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert candle_cache.cache_folder() == (
        tmp_path / "home" / ".cache" / "cryptosmarttrader" / "candles-v1"
    )


def test_pruning_keeps_the_most_recently_used_entries(tmp_path: Path) -> None:
    folder = tmp_path / "candles"
    arrays = {f"{i:040x}": np.full((10, 6), float(i)) for i in range(4)}
    for i, (key, array) in enumerate(arrays.items()):
        candle_cache.store(folder, key, array)
        (entry,) = folder.glob(f"{key}-*.npy")
        os.utime(entry, ns=(i * 10**9, i * 10**9))
    # reading the oldest makes it the most recently used
    assert candle_cache.load(folder, f"{0:040x}") is not None
    candle_cache.prune(folder, max_entries=2)
    kept = {entry.name.partition("-")[0] for entry in folder.glob("*.npy")}
    assert kept == {f"{0:040x}", f"{3:040x}"}
    size = next(folder.glob("*.npy")).stat().st_size
    candle_cache.prune(folder, max_bytes=size)
    assert [e.name.partition("-")[0] for e in folder.glob("*.npy")] == [f"{0:040x}"]


def test_without_a_home_there_is_no_cache(hourly: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CST_CACHE_DIR", "CST_CANDLE_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.setattr(recorded_data, "_PARSED", {})
    assert candle_cache.cache_folder() is None
    assert recorded_data._load_array(hourly).shape[0] > 20_000


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CST_CANDLE_CACHE", "maybe", r"CST_CANDLE_CACHE='maybe': expected true or false"),
        ("CST_CANDLE_CACHE", "", r"CST_CANDLE_CACHE='': expected true or false"),
        ("CST_CACHE_DIR", "", r"CST_CACHE_DIR='': expected a folder"),
        ("CST_CACHE_DIR", "  ", r"CST_CACHE_DIR='  ': expected a folder"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    # Given the other setting sound, and the working folder a fresh one (an empty folder name
    # read as "." would put the cache there)
    monkeypatch.setenv("CST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CST_CANDLE_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    # Then the setting is named with its value, on one line
    with pytest.raises(ValueError, match=message) as refused:
        candle_cache.cache_folder()
    assert "\n" not in str(refused.value)
    assert not list(tmp_path.rglob("candles-v*"))


def test_a_relative_xdg_cache_home_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the XDG spec: a relative XDG_CACHE_HOME is invalid and ignored
    monkeypatch.delenv("CST_CACHE_DIR", raising=False)
    monkeypatch.delenv("CST_CANDLE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert candle_cache.cache_folder() == (
        tmp_path / "home" / ".cache" / "cryptosmarttrader" / "candles-v1"
    )


def test_pruning_deletes_the_temporary_files_of_writers_that_died(tmp_path: Path) -> None:
    # Given the temporary file of a writer killed an hour and more ago, and one being written
    folder = tmp_path / "candles"
    folder.mkdir()
    dead, live = folder / f".{0:040x}.123.456.tmp", folder / f".{1:040x}.124.457.tmp"
    for tmp in (dead, live):
        tmp.write_bytes(b"\x93NUMPY" + b"\0" * 1000)
    os.utime(dead, ns=(0, 0))
    # When an entry is stored (which prunes)
    candle_cache.store(folder, f"{2:040x}", np.full((10, 6), 2.0))
    # Then the dead writer's file is gone, the live one and the entry kept
    assert not dead.exists() and live.exists()
    assert len(list(folder.glob("*.npy"))) == 1


def test_a_changed_parser_does_not_read_the_entries_of_the_former_one(
    cache: Path, hourly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file parsed and stored by this code
    parsed = recorded_data._load_array(hourly)
    # When a reader whose parse differs (another checkout, a later release that forgot to bump
    # CACHE_VERSION) reads the same bytes through the same cache folder
    source = Path(recorded_data.__file__).read_text()
    changed = source.replace(
        "    return arr\n\n\n# Candle files parsed", "    return arr * 2\n\n\n# Candle files parsed"
    )
    assert changed != source
    copy = tmp_path / "recorded_data_changed.py"
    copy.write_text(changed)
    spec = importlib.util.spec_from_file_location("recorded_data_changed", copy)
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, other)
    spec.loader.exec_module(other)
    # Then it gets its own parse, not the entry of the former one
    assert np.array_equal(other._load_array(hourly), parsed * 2, equal_nan=True)
    # and this code still gets its own
    assert np.array_equal(recorded_data._load_array(hourly), parsed, equal_nan=True)
