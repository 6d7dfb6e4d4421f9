"""``dpn bench chain`` on a small run: real pledges on a real anvil, mirrored into a fresh
database, the JSON it prints, and its refusals. Here with the chain tests because it
starts a node (skipped, saying why, when anvil is not installed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bench.chain import EXIT_NO_ANVIL, EXIT_USAGE, main
from bench.chain.pledges import pledge_amount
from ledger.chain.anvil import NODE_MODULES, anvil_binary

EVENTS = 200
KEYS = {
    "events_per_s",
    "events",
    "floor_events_per_s",
    "ratio_vs_floor",
    "targets",
    "targets_met",
    "met",
    "recorded",
    "rounds",
    "batch_blocks",
    "seconds",
    "floor_seconds",
    "database",
    "peak_rss_mib",
}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    if anvil_binary() is None:
        pytest.skip(f"anvil not installed under {NODE_MODULES}/@foundry-rs/ (run `make`)")
    code = main(["--events", str(EVENTS), "--pledgers", "30", "--per-block", "40", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def _check(result: dict[str, Any], database: str) -> None:
    assert result.keys() >= KEYS
    assert result["events"] == result["recorded"] == EVENTS
    assert result["chain_total_wei"] == sum(pledge_amount(i) for i in range(EVENTS))
    assert result["database"] == database
    assert result["events_per_s"] > 0 and result["floor_events_per_s"] > 0
    assert result["ratio_vs_floor"] == pytest.approx(
        result["events_per_s"] / result["floor_events_per_s"], rel=0.01, abs=0.001
    )
    assert result["targets"] == {"events_per_s": 1_000, "ratio_vs_floor": 0.3}
    assert result["met"] == all(result["targets_met"].values())
    assert result["targets_met"]["events_per_s"] == (result["events_per_s"] >= 1_000)


def test_every_pledge_is_mirrored_once_in_several_rounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 200 pledges, 40 a block: 5 blocks of pledges after the factory's and the escrow's;
    # 2 blocks a round makes the follower go round 4 times, the cursor moving each time.
    result = _run(capsys, "--batch-blocks", "2", "--json")
    _check(result, "sqlite")
    assert result["pledge_blocks"] == 5
    assert result["rounds"] == 4


@pytest.mark.postgres
def test_on_postgresql(capsys: pytest.CaptureFixture[str], postgres_engine: Engine) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    _check(_run(capsys, "--database", url, "--json"), "postgresql")


@pytest.mark.parametrize(
    "args",
    [
        ["--events", "0"],
        ["--events", "10", "--pledgers", "11"],
        ["--per-block", "401"],
        ["--batch-blocks", "0"],
        ["--database", "sqlite:///elsewhere.sqlite3"],
        ["--database", "not a url"],
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(args) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("dpn bench chain: ")


def test_no_anvil_is_a_json_error_and_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--anvil", str(tmp_path / "anvil"), "--json"]) == EXIT_NO_ANVIL
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == "anvil_not_found"
    assert len(captured.err.strip().splitlines()) == 1
