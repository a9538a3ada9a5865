"""`python -m cryptosmarttrader.cli ...` runs `cst ...`."""

from cryptosmarttrader.cli import app

app(prog_name="cst")
