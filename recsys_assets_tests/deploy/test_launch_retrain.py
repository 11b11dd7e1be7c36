"""The `retrain` workflow's client refuses bad input before it calls the webserver.

Launching and waiting against a real webserver is covered by `test_production_topology.py`.
"""

from __future__ import annotations

import pytest

from scripts.launch_retrain import client_for, main


def test_the_webserver_url_must_be_http_or_https():
    with pytest.raises(ValueError, match="not an http"):
        client_for("dagster.example.com")
    assert client_for("https://dagster.example.com", token="t")._url == "https://dagster.example.com/graphql"


@pytest.mark.parametrize(
    ("partition", "run_config"), [("2026-13-01", "{}"), ("yesterday", "{}"), ("2026-11-28", "[1, 2]")]
)
def test_a_bad_partition_or_run_config_is_refused(partition: str, run_config: str, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--url", "http://127.0.0.1:9", "--partition", partition, "--run-config", run_config])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert ("--partition" in error) if run_config == "{}" else ("--run-config" in error)
