"""``dpn bench engine`` on a small run: orders, then lease orders, through the real
engine into a fresh database, the JSON it prints (its keys, and figures that add up), a
profiled run, and its refusals. No figure is held to a target here: machines are noisy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from bench.engine import EXIT_USAGE, main

ORDERS = 400
REST = 300
HOLDERS = 40  # 20 of them lease to the other 20
SMALL = [
    "--orders", str(ORDERS), "--owners", "20", "--books", "2", "--threads", "4",
    "--window", "16", "--rebuild-orders", str(REST), "--floor-n", "200",
    "--rights-holders", str(HOLDERS), "--json",
]  # fmt: skip
KEYS = {
    "orders_per_s",
    "orders",
    "placed",
    "cancels",
    "trades",
    "refused",
    "seconds",
    "entries",
    "entries_per_s",
    "batches",
    "mean_batch",
    "sa_statements_per_order",
    "sa_statements_per_batch",
    "cpu_ms_per_order",
    "batch_cpu_ms_per_order",
    "floor_entries_per_s",
    "ratio_to_floor",
    "verify_ok",
    "verify_entries",
    "target_orders_per_s",
    "meets_target",
    "rebuild",
    "rebuild_s",
}
LEASE_KEYS = {
    "lease_orders_per_s",
    "lease_orders",
    "lease_placed",
    "lease_cancels",
    "leases",
    "lease_refused",
    "lease_seconds",
    "lease_entries",
    "lease_terms",
    "lease_books",
}
RIGHTS_KEYS = {"rights_as_of_s", "holders", "leases", "meets_target", "sum_ok"}
REBUILD_KEYS = {"rebuild_s", "engine_rebuild_s", "open_orders", "commands", "hashes_equal"}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, Any], str]:
    code = main([*SMALL, *args])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result, captured.err


def _check(result: dict[str, Any], target: int) -> None:
    assert result.keys() >= KEYS | LEASE_KEYS
    assert result["orders"] == result["placed"] + result["cancels"] == ORDERS
    assert result["cancels"] > 0 and result["trades"] > 0
    assert set(result["refused"]) <= {"order_not_open"}  # a cancel may come after the fill
    # Every request writes at least one entry (its placing or its cancel) unless refused.
    assert result["entries"] >= ORDERS - sum(result["refused"].values())
    assert result["verify_ok"] is True
    assert result["verify_entries"] > result["entries"]
    for name in (
        "orders_per_s",
        "entries_per_s",
        "floor_entries_per_s",
        "seconds",
        "sa_statements_per_order",
        "cpu_ms_per_order",
        "batch_cpu_ms_per_order",
    ):
        assert result[name] > 0, name
    assert result["ratio_to_floor"] == pytest.approx(
        result["orders_per_s"] / result["floor_entries_per_s"], rel=0.01, abs=0.001
    )
    assert result["batches"] >= 1 and result["mean_batch"] >= 1
    assert result["target_orders_per_s"] == target
    assert result["meets_target"] == (result["orders_per_s"] >= target)
    # The lease flow: as many requests, on each book over two terms; they lease.
    assert result["lease_orders"] == result["lease_placed"] + result["lease_cancels"] == ORDERS
    assert result["lease_cancels"] > 0 and result["leases"] > 0 and result["lease_seconds"] > 0
    assert set(result["lease_refused"]) <= {"order_not_open"}  # never lease_to_self
    assert result["lease_entries"] >= ORDERS - sum(result["lease_refused"].values())
    assert len(result["lease_terms"]) == 2 and result["lease_books"] == 2 * 2
    assert result["verify_entries"] > result["entries"] + result["lease_entries"]
    rebuild = result["rebuild"]
    assert rebuild.keys() >= REBUILD_KEYS
    assert rebuild["open_orders"] == rebuild["commands"] == REST
    assert rebuild["hashes_equal"] is True
    assert rebuild["rebuild_s"] == result["rebuild_s"] > 0
    rights = result["rights"]
    assert rights.keys() >= RIGHTS_KEYS
    assert (rights["holders"], rights["leases"], rights["sum_ok"]) == (HOLDERS, HOLDERS // 2, True)
    assert rights["rights_as_of_s"] == result["rights_as_of_s"] > 0
    assert rights["meets_target"] == (rights["rights_as_of_s"] < 1.0)


def test_a_small_run_on_sqlite_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    result, _ = _run(capsys, "--sqlite-only")
    assert set(result) == {"sqlite", "cpus"}
    _check(result["sqlite"], 5_000)
    assert result["sqlite"]["profiled"] is False


@pytest.mark.postgres
def test_on_postgresql(capsys: pytest.CaptureFixture[str], postgres_engine: Engine) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    result, _ = _run(capsys, "--no-sqlite", "--postgres", url)
    assert set(result) == {"postgresql", "cpus"}
    _check(result["postgresql"], 3_000)


def test_the_profile_sees_the_engines_thread_and_the_rebuild(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, err = _run(capsys, "--profile", "15")
    assert set(result) == {"sqlite", "cpus"}  # a profile runs on SQLite alone
    assert result["sqlite"]["profiled"] is True
    flow, _, rebuilt = err.partition("rebuild:")
    assert "market/engine/session.py" in flow and "(place)" in flow
    assert "market/engine/engine.py" in rebuilt and "(rebuild)" in rebuilt


def test_no_rebuild_leases_nor_rights_when_asked_for_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, _ = _run(
        capsys, "--sqlite-only", "--rebuild-orders", "0", "--orders", "50",
        "--lease-orders", "0", "--rights-holders", "0",
    )  # fmt: skip
    assert "rebuild" not in result["sqlite"] and "rebuild_s" not in result["sqlite"]
    assert not (LEASE_KEYS | {"rights", "rights_as_of_s"}) & result["sqlite"].keys()


@pytest.mark.parametrize(
    "args",
    [
        ["--orders", "0"],
        ["--owners", "1"],
        ["--owners", "1024"],
        ["--books", "0"],
        ["--threads", "9", "--owners", "8"],
        ["--window", "0"],
        ["--lease-orders", "-1"],
        ["--rights-holders", "1"],
        ["--rebuild-orders", "20001", "--owners", "2"],
        ["--fee-bps", "1001"],
        ["--no-sqlite", "--sqlite-only"],
        ["--profile", "0"],
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(args) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("dpn bench engine: ")
