"""Starts the release binary in `--demo` mode (its own in-process fixture upstream serving
`fixtures/demo/`, a temp data dir, an embedded nats-server on a free port) for the drivers that
exercise the HTTP API alone: `fuzz.py` and `pollers.py`. Stopping is `common.py`'s: every child
is stopped on exit or signal.
"""

import os

import common


def start_demo(work_dir, opendota_daily=None):
    """Starts `serve --demo` and waits for `/readyz`. An OpenDota daily budget, when given, replaces
    the default one: once it is spent, every further fetch stays queued."""
    data_dir = os.path.join(work_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    argv = [common.BINARY, "serve", "--demo", "--demo-dir", common.FIXTURES,
            "--http-addr", "127.0.0.1:0", "--data-dir", data_dir, "--nats-port", "0"]
    if opendota_daily is not None:
        argv += ["--opendota-daily-limit", str(opendota_daily)]
    svc = common.Child("service", argv, os.path.join(work_dir, "service.log"), data_dir=data_dir)
    common.wait_until(lambda: common.request("GET", svc.addr, "/readyz")[0] == 200, 30,
                      "service /readyz")
    return svc
