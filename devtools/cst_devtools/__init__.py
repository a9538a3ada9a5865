"""Development tooling for CryptoSmartTrader: never part of a Lambda bundle.

* ``local_aws`` — the embedded local AWS (moto) behind every ``cst ... --local`` command and
  ``cst demo``;
* ``local_deploy`` — ``cst local up/down``: the synthesized stacks on a local moto server;
* ``faults`` and ``chaos`` — ``cst chaos run``: real faults on loopback and the scenarios that
  check recovery;
* ``moto_shims`` and ``fake_binance`` — what the tests add to moto, and a local fake exchange
  speaking Binance's signed REST API.

The runtime package (``cryptosmarttrader``: domain, services, adapters, handlers, wiring) never
imports this package nor moto (import-linter contracts in ``pyproject.toml``); the CLI imports
it inside the commands that run on local AWS. moto is a development dependency.
"""
