"""``dpn buyouts run --limit``: a whole number in 1..RUN_BATCH_MAX, checked before any
database is opened (one line, status 2), however many digits it is given."""

from __future__ import annotations

import pytest

from api.cli import main
from ledger.outputs.buyout_clock import RUN_BATCH_MAX


@pytest.mark.parametrize(
    "limit", ["0", "-1", "1.5", "x", "", str(RUN_BATCH_MAX + 1), "000000019999", "٣", "9" * 40]
)
def test_a_limit_out_of_range_is_one_line(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    # No database is named: a limit refused first never reaches one.
    assert main(["--database", "sqlite:////nonexistent/dir/x.sqlite3", "buyouts", "run",
                 "--limit", limit]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "limit_malformed" in err, err
