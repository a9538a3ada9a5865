"""The web dashboard as a trader uses it: headless Chromium against `cst api serve`'s server.

The state is the demo's (`cst demo`: ingest, scan and two execution cycles on the real recorded
data); the server is the one `cst api serve` runs (the API Lambda handler behind the local API
Gateway bridge, plus the built dashboard at `/`). Every page is opened, read and screenshotted
(`tests/e2e/output/*.png`); a kill-switch flip goes through the page's two steps and must show
up in the audit trail; no page may log a console error. Empty states (no decisions yet, API
down, wrong key) must say what is missing in words.

Needs Debian's Chromium (`apt-get install -y chromium`) and the built dashboard (`make web`):
without them the tests skip with the reason, and fail in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.cli.api import DEFAULT_WEB_DIR, local_api, make_server
from tests.e2e.conftest import DEMO_GROUP, DemoRun

pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.xdist_group(DEMO_GROUP)]

CHROMIUM = Path(os.environ.get("CST_CHROMIUM", "/usr/bin/chromium"))
OUTPUT = Path(__file__).parent / "output"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not (DEFAULT_WEB_DIR / "index.html").is_file():
        _unavailable(f"the dashboard is not built ({DEFAULT_WEB_DIR}): run `make web`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def demo_state(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state `make demo` leaves: real decisions, orders, fills and equity points (the
    worker's one demo run, tests/e2e/conftest.py; a copy, since the server saves back to it)."""
    assert demo_run.exit_code == 0, demo_run.stderr + demo_run.stdout
    assert "FILLED" in demo_run.stdout
    return demo_run.copy_state(tmp_path_factory.mktemp("web") / "demo")


class Served:
    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key


@pytest.fixture
def serve(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start the `cst api serve` server over a state directory; stops (and saves) after."""
    monkeypatch.setenv("CST_DATA_DIR", str(data_dir))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stack: list[Any] = []

    def start(state: Path) -> Served:
        key = secrets.token_urlsafe(24)
        context = local_api(state)
        invoke = context.__enter__()
        server = make_server(0, key, invoke, DEFAULT_WEB_DIR)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stack.append((context, server, thread))
        host, port = server.server_address[:2]
        return Served(f"http://{host!s}:{port}", key)

    yield start
    for context, server, thread in reversed(stack):
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        context.__exit__(None, None, None)


class Page:
    """A browser tab that records console errors and takes screenshots."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.base = base

    def open(self, route: str) -> Any:
        self.page.goto(f"{self.base}/#/{route}")
        self.wait()
        return self.page

    def wait(self) -> None:
        self.page.wait_for_selector("#app[aria-busy='false']", timeout=20_000)

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.base}/")
        self.page.fill("#api-key", key)
        self.page.click("#sign-in button[type=submit]")
        self.wait()

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def text(self) -> str:
        return str(self.page.inner_text("#app"))

    def close(self) -> None:
        self.context.close()


def test_every_page_over_the_demo_state(browser: Any, demo_state: Path, serve: Any) -> None:
    served = serve(demo_state)
    tab = Page(browser, served.url)
    # Given a trader who signs in with the key the server printed
    tab.sign_in(served.key)
    assert tab.page.evaluate("sessionStorage.getItem('cst-api-key')") == served.key
    assert tab.page.evaluate("localStorage.length") == 0
    assert served.key not in tab.page.url

    # Then the signals page shows the demo's real BUY decision, its votes and model version
    page = tab.open("signals")
    buy = page.locator("#signals-table tr[data-action='buy']").first
    coin = buy.get_attribute("data-symbol")
    assert coin
    assert "FILLED" in buy.inner_text()
    assert page.inner_text("#model-version") == "technical-agent"
    buy.locator("button").click()
    assert "technical" in page.locator("#signals-table tr.details").first.inner_text()
    tab.shot("signals")

    # the coin page draws the price chart with the decision and fill, and the feature history
    page = tab.open(f"coin/{coin}")
    assert page.locator("#price-chart canvas").count() == 1
    assert page.locator("#feature-chart canvas").count() == 1
    assert "buy" in page.inner_text("#coin-decisions")
    assert "FILLED" in tab.text()
    tab.shot("coin")

    # the portfolio page shows the fill, its status history, the position and the equity curve
    page = tab.open("portfolio")
    orders = page.inner_text("#orders")
    assert coin in orders and "FILLED" in orders and "SUBMITTED" in orders
    assert coin in page.inner_text("#positions")
    assert page.locator("#equity-chart canvas").count() == 1
    assert "2022-" in page.inner_text("#daily-pnl")
    tab.shot("portfolio")

    # the risk page flips the kill-switch through two steps and the audit trail shows it
    page = tab.open("risk")
    assert "NORMAL" in tab.text()
    assert page.locator("#breakers tr").count() >= 5
    page.fill("#ks-reason", "e2e drill: exchange outage")
    page.fill("#ks-authorization", "local")
    page.click("#ks-start")
    assert page.locator("#ks-confirm").is_visible()  # step two: nothing sent yet
    assert "OFF" in page.inner_text("#ks-state")
    page.click("#ks-confirm-button")
    page.wait_for_selector("#ks-state:has-text('ON')", timeout=20_000)
    tab.wait()
    audit = page.inner_text("#audit")
    assert "killswitch.on" in audit
    assert "e2e drill: exchange outage" in audit
    assert "apikey:local-api-key" in audit
    assert page.locator("#ks-rollback").count() == 0  # an operator's switch: no rollback line
    tab.shot("risk")

    # a go-live rollback then holds the switch (its value as the rollback stores it, written by
    # another function: the API sees it once its kill-switch read cache of 5 s expires)
    import boto3

    from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
    from cryptosmarttrader.settings import AwsResources

    marked = KillSwitchStatus(on=True, reason="go-live r-7 rollback: SLO breach",
                              actor="system:golive", at=datetime.now(UTC), golive_rollback="r-7")  # fmt: skip
    resources = AwsResources()
    boto3.client("ssm", region_name=resources.region).put_parameter(
        Name=resources.kill_switch_param, Value=json.dumps(marked.model_dump()),
        Type="String", Overwrite=True,
    )  # fmt: skip

    # go-live and models say what is not produced yet, in words
    tab.open("golive")
    assert "No go-live run has started" in tab.text()
    assert "Max tracking error bps" in tab.text()
    tab.shot("golive")
    tab.open("models")
    assert "no model registered" in tab.text().lower()
    tab.shot("models")

    # and the risk page says the rollback holds it, once the API's read of the switch is fresh
    deadline = time.monotonic() + 30
    page = tab.open("risk")
    while page.locator("#ks-rollback").count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
        tab.wait()
    assert "ON" in page.inner_text("#ks-state")
    assert "Go-live rollback of run r-7: held positions keep their protective sells" in (
        page.inner_text("#ks-rollback")
    )

    assert tab.errors == []  # no console error on any page

    # and an unknown coin is a clear message, not a broken page (the browser logs the 404)
    tab.open("coin/not-a-coin")
    assert "unknown symbol 'not-a-coin'" in tab.text()
    tab.close()


def test_empty_state_and_wrong_key_and_api_down_are_said_in_words(
    browser: Any, serve: Any, tmp_path: Path
) -> None:
    # Given a state where nothing has run yet
    served = serve(tmp_path / "fresh")
    tab = Page(browser, served.url)

    # a wrong key is refused in words, and the key is dropped from the session
    tab.sign_in("not-the-key-" + "x" * 20)
    assert "refused the API key" in tab.text()
    assert tab.page.evaluate("sessionStorage.getItem('cst-api-key')") is None
    tab.shot("wrong-key")
    assert len(tab.errors) == 1 and "403" in tab.errors[0]  # the browser logs the refusal
    tab.errors.clear()

    # with the right key, every page says what is missing
    tab.sign_in(served.key)
    tab.open("signals")
    assert "No decisions yet" in tab.text()
    tab.shot("signals-empty")
    tab.open("portfolio")
    assert "No orders yet" in tab.text()
    assert "no execution cycle has valued the account yet" in tab.text()
    tab.open("risk")
    assert "No state-changing call has been audited yet" in tab.text()
    assert tab.errors == []

    # and when the API cannot be reached, the page says so instead of staying blank
    tab.page.route("**/api/v1/**", lambda route: route.abort())
    tab.open("portfolio")
    assert "is not reachable" in tab.text()
    tab.shot("api-down")
    tab.close()


def test_the_server_serves_only_the_dashboard_files_with_a_strict_policy(
    serve: Any, tmp_path: Path
) -> None:
    import urllib.error
    import urllib.request

    if not (DEFAULT_WEB_DIR / "index.html").is_file():
        _unavailable(f"the dashboard is not built ({DEFAULT_WEB_DIR}): run `make web`")
    served = serve(tmp_path / "state")
    with urllib.request.urlopen(f"{served.url}/") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "connect-src 'self'" in csp and "script-src 'self'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert b"CryptoSmartTrader" in response.read()
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/.env", "/nope.js"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{served.url}{path}")
        assert err.value.code == 404
    # the API itself still needs the key
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{served.url}/api/v1/portfolio")
    assert err.value.code == 403
