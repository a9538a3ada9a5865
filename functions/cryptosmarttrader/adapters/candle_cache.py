"""A parsed copy of each recorded candle file, kept on local disk and keyed by the file's bytes.

Parsing a recorded candle file (a JSON array of ``[time_ms, open, high, low, close, volume]``
rows) is most of what a replay command spends on data: the 33 Binance hourly files hold 950,336
rows, 0.77 s of CPU to parse against 0.13 s to load from this cache
(``bench/bench_candle_cache.py``), in every process that reads them (`cst scan`, `cst execute`,
`cst backtest`, a chaos scenario; KuCoin's hourly files come on top).

What makes a hit the same as a parse:
- the key is the BLAKE2b digest of the file's bytes, read whole each time: a file changed in any
  way (a damaged copy, the same size and modification time, another path to the same bytes) has
  another key, and is parsed and checked again;
- the key is also keyed by the parsing code (the reader passes a digest of its own source): a
  changed parser (another checkout, a release that forgot to bump :data:`CACHE_VERSION`) never
  reads the entries of the former one;
- only arrays that passed the parse are stored: a file that cannot be read, or holds
  non-numbers or rows of the wrong width, raises with its reason every time, as it did;
- each entry carries the digest of its own array in its name and is refused when its content
  does not match it, or its header its size (a torn or altered entry, header included, is
  deleted, and the file is parsed again);
- entries are written to a temporary name and renamed, so a reader never sees a partial one.

The folder is ``CST_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/cryptosmarttrader`` or
``~/.cache/cryptosmarttrader``), ``candles-v<N>/`` inside it; ``CST_CANDLE_CACHE=false`` turns
the cache off. A folder that cannot be created or written is not an error: the file is parsed,
as without a cache. The folder keeps at most :data:`MAX_ENTRIES` entries and
:data:`MAX_BYTES`; the least recently used go first. A temporary file left by a writer killed
mid-write is deleted after :data:`STALE_TMP_S`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Final

import numpy as np
from pydantic import Field, ValidationError, field_validator

from cryptosmarttrader.settings import EnvSettings

# Bump when the parse changes what it returns for the same bytes: older entries are then never
# read (another folder), and the old folder can be deleted.
CACHE_VERSION: Final = 1
MAX_ENTRIES: Final = 512
MAX_BYTES: Final = 2 * 1024**3
_WIDTH: Final = 6
# a temporary file older than this is a dead writer's (writing an entry takes milliseconds)
STALE_TMP_S: Final = 3600.0


class CandleCacheSettings(EnvSettings):
    """``CST_CACHE_DIR`` (folder) and ``CST_CANDLE_CACHE`` (on/off) of the parsed-candle cache."""

    cache_dir: Path | None = None
    candle_cache: bool = Field(default=True)

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        # a blank name would read as "." (the cache in whatever folder a command runs from)
        if isinstance(value, str) and not value.strip():
            raise ValueError("blank folder name")
        return value


class CacheSettingError(ValueError):
    """A ``CST_CACHE_DIR`` or ``CST_CANDLE_CACHE`` value that cannot be used."""


_EXPECTED: Final = {
    "cache_dir": "expected a folder (unset it for the default)",
    "candle_cache": "expected true or false (or 1/0, yes/no, on/off)",
}


def _settings() -> CandleCacheSettings:
    try:
        return CandleCacheSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0])
        raise CacheSettingError(
            f"{CandleCacheSettings.ENV_PREFIX}{field.upper()}={error['input']!r}: "
            f"{_EXPECTED[field]}"
        ) from exc


def cache_folder() -> Path | None:
    """The folder of the cache's entries, or None when the cache is turned off.

    Raises :class:`CacheSettingError` (naming the variable and its value) on a bad setting."""
    settings = _settings()
    if not settings.candle_cache:
        return None
    base = settings.cache_dir
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        try:
            # a relative XDG_CACHE_HOME is invalid and ignored (XDG Base Directory spec)
            root = Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".cache"
        except (RuntimeError, KeyError):  # no home (a Lambda sandbox's user has none): no cache
            return None
        base = root / "cryptosmarttrader"
    return base / f"candles-v{CACHE_VERSION}"


def content_key(body: bytes, parser: bytes = b"") -> str:
    """The key of a file's bytes as parsed by the code ``parser`` names (a digest of it, at most
    64 bytes): another parser's entries are never read, and age out as least recently used."""
    return hashlib.blake2b(body, digest_size=20, key=parser).hexdigest()


def _array_digest(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=16).hexdigest()


def load(folder: Path, key: str) -> np.ndarray | None:
    """The stored array of the bytes ``key`` names, or None (absent, unreadable or altered: an
    altered entry is deleted)."""
    try:
        entries = list(folder.glob(f"{key}-*.npy"))
    except OSError:
        return None
    for entry in entries:
        digest = entry.stem.partition("-")[2]
        array = _read_entry(entry)
        if array is None or _array_digest(array) != digest:
            _remove(entry)
            continue
        with contextlib.suppress(OSError):
            os.utime(entry)  # recently used: pruned last
        return array
    return None


def _read_entry(entry: Path) -> np.ndarray | None:
    """The (n, 6) float64 array an entry holds, or None when it holds anything else.

    The header is checked against the entry's size before any row is read: a damaged header
    (numpy's parser raises tokenize and syntax errors on it) or one that claims more rows than
    the entry holds (numpy would try to allocate them all) is refused, never raised."""
    try:
        with entry.open("rb") as fp:
            try:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    return None
            except Exception:  # noqa: BLE001 - whatever a damaged header makes the parser raise
                return None
            if (
                dtype != np.float64
                or fortran_order
                or len(shape) != 2
                or shape[1] != _WIDTH
                or shape[0] <= 0
                or os.fstat(fp.fileno()).st_size - fp.tell() != shape[0] * _WIDTH * 8
            ):
                return None
            array = np.empty(shape, dtype=np.float64)
            if fp.readinto(array.data.cast("B")) != array.nbytes:
                return None
            return array
    except OSError:
        return None


def store(folder: Path, key: str, array: np.ndarray) -> None:
    """Keep ``array`` as the parse of the bytes ``key`` names (nothing happens when the folder
    cannot be written)."""
    if array.dtype != np.float64 or array.ndim != 2 or array.shape[1] != _WIDTH:
        raise ValueError(
            f"a candle array is (n, {_WIDTH}) float64, got {array.shape} {array.dtype}"
        )
    if array.shape[0] == 0:
        return
    tmp = folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as out:
            np.save(out, array, allow_pickle=False)
        tmp.replace(folder / f"{key}-{_array_digest(array)}.npy")
    except OSError:
        _remove(tmp)
        return
    prune(folder)


def prune(
    folder: Path,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_BYTES,
    now_s: float | None = None,
) -> None:
    """Delete the least recently used entries beyond ``max_entries`` or ``max_bytes``, and the
    temporary files of writers that died (killed mid-write) more than :data:`STALE_TMP_S` ago
    (``now_s``: the current POSIX time, the system's by default)."""
    now = time.time() if now_s is None else now_s
    try:
        for tmp in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    _remove(tmp)
        found = []
        for entry in folder.glob("*.npy"):
            try:
                st = entry.stat()
            except OSError:
                continue
            found.append((st.st_mtime_ns, st.st_size, entry))
    except OSError:
        return
    found.sort(key=lambda item: item[0], reverse=True)
    kept_bytes = 0
    for index, (_, size, entry) in enumerate(found):
        kept_bytes += size
        if index >= max_entries or kept_bytes > max_bytes:
            _remove(entry)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
