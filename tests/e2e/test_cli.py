"""The ``dpn`` command line, run as a real process against a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import make_engine

from .signin import Wallet, sign_in

DPN = [sys.executable, "-m", "api.cli"]
REPO = Path(__file__).resolve().parents[2]


def _dpn(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DPN_DATABASE_URL": f"sqlite:///{tmp_path / 'dpn.sqlite3'}"}
    return subprocess.run(
        [*DPN, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def demo_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dpn demo`` run once for the module, into a database each test gets a copy of."""
    made = tmp_path_factory.mktemp("demo")
    first = _dpn(made, "demo")
    assert first.returncode == 0, first.stderr
    assert "Valley Greenhouse Co-op (organizer)" in first.stdout
    (coop,) = [line for line in first.stdout.splitlines() if "Co-op (organizer)" in line]
    # 20 % issued, and 1 % more for each buy-out installment paid: two in the demo's
    # past, and the third once the present is 45 days into its quarter.
    assert coop.split()[-2] in ("22.00", "23.00"), coop
    assert "verify: ok" in first.stdout
    assert not (made / "dpn.sqlite3-wal").exists()  # closed: the file holds it all
    return made


@pytest.fixture
def demo_db(demo_made: Path, tmp_path: Path) -> Path:
    """A copy of the demo's database, the test's own to change."""
    shutil.copyfile(demo_made / "dpn.sqlite3", tmp_path / "dpn.sqlite3")
    return tmp_path


def test_demo_is_idempotent_and_verifies(demo_db: Path) -> None:
    before = json.loads(_dpn(demo_db, "digest").stdout)
    again = _dpn(demo_db, "demo")
    assert again.returncode == 0, again.stderr
    assert json.loads(_dpn(demo_db, "digest").stdout) == before
    result = _dpn(demo_db, "verify", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0
    assert report["ok"] and report["head_seq"] == before["seq"]
    against = f"{before['seq']}:{before['head_hash']}"
    assert _dpn(demo_db, "verify", "--against", against).returncode == 0


def test_journal_tails_and_filters(demo_db: Path) -> None:
    lines = _dpn(demo_db, "journal", "--tail", "3", "--json").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 3
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    holds = _dpn(demo_db, "journal", "--kind", "hold.place").stdout
    assert "hold demo:offer:river place 5000" in holds
    units = _dpn(demo_db, "journal", "--asset", "5GRNH0USX7K000417", "--tail", "500").stdout
    assert all("units:5GRNH0USX7K000417" in line for line in units.splitlines())
    market = {"order.place", "order.release", "order.expire", "trade", "lease"}  # the demo's market
    buyout = [line for line in units.splitlines() if line.split()[2].startswith("buyout.")]
    assert 3 <= len(buyout) <= 4  # Hill accepts (its units held), 2 or 3 installments paid
    before = [
        line for line in units.splitlines() if line.split()[2] not in market and line not in buyout
    ]
    assert len(before) == 4  # registration, issue, the sale, the hold on an offer
    money = _dpn(demo_db, "journal", "--currency", "EUR", "--tail", "500").stdout.splitlines()
    assert money and all("ccy:EUR" in line for line in money)
    assert not set(money) & set(before)


def test_bad_input_gets_one_line_and_status_2(demo_db: Path) -> None:
    result = _dpn(demo_db, "journal", "--asset", "5GRNH0USE7K000417")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "asset_id_check_digit" in result.stderr
    member = _dpn(demo_db, "journal", "--member", "0x1a642f0e3c3af545e7acbd38b07251b3990914f1")
    assert member.returncode == 2 and "address_checksum" in member.stderr
    digest = _dpn(demo_db, "verify", "--against", "12:nothex")
    assert digest.returncode == 2 and "digest_malformed" in digest.stderr


def test_verify_fails_on_an_entry_altered_behind_the_triggers(demo_db: Path) -> None:
    with sqlite3.connect(demo_db / "dpn.sqlite3") as conn:
        (seq,) = conn.execute(
            "SELECT seq FROM journal_entries WHERE idempotency_key = 'demo:sale:units'"
        ).fetchone()  # North's 10,000 units to Mara
        conn.execute("DROP TRIGGER journal_postings_no_update")
        conn.execute(f"UPDATE journal_postings SET amount = '-20000' WHERE seq = {seq} AND idx = 0")
        conn.execute(f"UPDATE journal_postings SET amount = '20000' WHERE seq = {seq} AND idx = 1")
    result = _dpn(demo_db, "verify")
    assert result.returncode == 1
    assert f"FAILED at entry {seq}" in result.stderr
    assert "hash mismatch" in result.stderr


def test_verify_fails_on_entitlements_changed_behind_the_ledger(demo_db: Path) -> None:
    with sqlite3.connect(demo_db / "dpn.sqlite3") as conn:
        conn.execute(
            "UPDATE output_entitlements SET entitled = entitled + 1"
            " WHERE rowid = (SELECT min(rowid) FROM output_entitlements)"
        )
    result = _dpn(demo_db, "verify")
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED in the outputs: outputs: period ")
    report = json.loads(_dpn(demo_db, "verify", "--json").stdout)
    assert report["ok"] is False and report["outputs_ok"] is False
    assert "entitlements sum to" in report["outputs_problems"][0]


def _run_dpn(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dpn`` with no database configured but what ``args`` name."""
    env = {k: v for k, v in os.environ.items() if k != "DPN_DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [*DPN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _one_line_error(result: subprocess.CompletedProcess[str], code: str, status: int = 2) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # no traceback
    assert result.stderr.startswith(f"dpn: error: {code}: "), result.stderr


def test_an_unknown_revision_to_downgrade_to_is_one_line(demo_db: Path) -> None:
    result = _dpn(demo_db, "db", "downgrade", "nonsense")
    _one_line_error(result, "revision_unknown")
    assert "nonsense" in result.stderr
    assert _dpn(demo_db, "verify").returncode == 0  # nothing was undone


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("notaurl", "database_url_malformed"),
        ("nosuchdialect://host/db", "database_url_unsupported"),
    ],
)
def test_a_database_option_that_is_no_url_is_one_line(tmp_path: Path, url: str, code: str) -> None:
    for command in (["digest"], ["db", "upgrade"], ["serve", "--port", "1"]):
        _one_line_error(_run_dpn(tmp_path, "--database", url, *command), code)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["verify"], ["digest"], ["journal"], ["db", "current"]])
def test_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dpn.sqlite3'}"
    result = _run_dpn(tmp_path, "--database", url, *command)
    _one_line_error(result, "database_missing")
    assert "no database at" in result.stderr and "dpn db upgrade" in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the directories nor the file


@pytest.mark.parametrize("command", [["verify"], ["digest"], ["journal"]])
def test_a_database_never_migrated_says_so(tmp_path: Path, command: list[str]) -> None:
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    result = _run_dpn(tmp_path, "--database", f"sqlite:///{empty}", *command)
    _one_line_error(result, "database_not_migrated")
    assert "dpn db upgrade" in result.stderr
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("DPN_ADMINS", "0x1a642f0e3c3af545e7acbd38b07251b3990914f1", "address_checksum"),
        ("DPN_ADMINS", "root", "address_malformed"),
        ("DPN_CHAIN_ID", "mainnet", "setting_malformed"),
    ],
)
def test_serve_refuses_a_malformed_setting_before_any_worker_starts(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, code: str
) -> None:
    monkeypatch.setenv(name, value)  # a mistyped admin is refused, not silently ignored
    _one_line_error(_dpn(demo_db, "serve", "--port", "1"), code)


def test_demo_if_empty_on_a_new_database_creates_it_and_loads_the_demo(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'dpn.sqlite3'}"
    first = _run_dpn(tmp_path, "--database", url, "demo", "--if-empty")
    assert first.returncode == 0, first.stderr
    again = _run_dpn(tmp_path, "--database", url, "demo", "--if-empty")
    assert again.returncode == 0 and "journal not empty" in again.stdout
    assert _run_dpn(tmp_path, "--database", url, "verify").returncode == 0


@pytest.mark.parametrize(
    "against",
    [
        "5:" + "g" * 64,  # not hex
        "5:" + "a" * 63,  # too short
        "5:" + "a" * 64 + "0",  # too long
        "-5:" + "a" * 64,
        "\u0665:" + "a" * 64,  # a digit, but not an ASCII one
        "a" * 64,  # no seq
    ],
)
def test_a_digest_that_is_not_seq_and_hex_hash_is_refused(tmp_path: Path, against: str) -> None:
    # Refused before the database is even looked for.
    _one_line_error(_dpn(tmp_path, "verify", f"--against={against}"), "digest_malformed")


def test_a_digest_past_the_head_says_the_journal_is_shorter(demo_db: Path) -> None:
    head = json.loads(_dpn(demo_db, "digest").stdout)
    against = f"{head['seq'] + 5}:{head['head_hash']}"
    result = _dpn(demo_db, "verify", "--against", against)
    assert result.returncode == 1
    assert "materialized state" not in result.stderr
    assert f"the journal has {head['seq']} entries, fewer than the {head['seq'] + 5}" in (
        result.stderr
    )
    report = json.loads(_dpn(demo_db, "verify", "--against", against, "--json").stdout)
    assert report["where"] == "digest" and report["bad_seq"] is None


def test_demo_prints_keys_a_person_can_sign_in_with(demo_db: Path) -> None:
    printed = _dpn(demo_db, "demo", "--print-keys")
    assert printed.returncode == 0, printed.stderr
    wallets = {}
    for line in printed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[-1].startswith("0x") and len(fields[-1]) == 66:
            address, key = fields[-2], fields[-1]
            assert Account.from_key(key).address == address
            wallets[address] = Wallet(address, bytes.fromhex(key[2:]))
    assert len(wallets) == 5
    engine = make_engine(f"sqlite:///{demo_db / 'dpn.sqlite3'}")
    try:
        with TestClient(create_app(Settings(), engine=engine)) as client:
            names = set()
            for wallet in wallets.values():
                me = client.get("/v1/members/me", headers=sign_in(client, wallet))
                assert me.status_code == 200, me.text
                names.add(me.json()["name"])
    finally:
        engine.dispose()
    assert "North Finance Node" in names and "Valley Greenhouse Co-op (organizer)" in names


def test_a_replay_file_is_read_with_the_limits_of_outside_json(tmp_path: Path) -> None:
    events, trades = tmp_path / "events.jsonl", tmp_path / "trades.jsonl"
    good = [
        '{"op":"limit","id":1,"side":"sell","price":10,"qty":5}',
        '{"op":"limit","id":2,"side":"buy","price":10,"qty":3}',
    ]
    events.write_text("\n".join(good) + "\n")
    played = _dpn(tmp_path, "bench", "market", "--replay", str(events), "--trades-out", str(trades))
    assert played.returncode == 0, played.stderr
    assert json.loads(trades.read_text()) == {"maker": 1, "taker": 2, "price": 10, "qty": 3}
    for line, code in (
        ("[" * 500 + "]" * 500, "json_too_deep"),
        ('{"op":"cancel","id":1,"id":2}', "json_duplicate_key"),
        ('{"op":"cancel","id":NaN}', "json_not_finite"),
    ):
        events.write_text(good[0] + "\n" + line + "\n")
        refused = _dpn(
            tmp_path, "bench", "market", "--replay", str(events), "--trades-out", str(trades)
        )
        assert refused.returncode == 2, refused.stderr
        assert f"line 2: {code}" in refused.stderr
