"""Votes, work logs and participation through the real app, on both databases: the
operator puts a proposal, holders vote (weighted by rights at the record time), change
their vote, and anyone reads the result and the ballots, each checked against the
journal's ``vote.cast`` entries; the operator logs work and a signed-in member reads who
took part; who may do what (anonymous 401, another member 403, the rightful one 2xx);
hostile bodies and every refusal are problem+json and change nothing; a repeated POST
answers the same and writes nothing.

The world: ADMIN; OPERATOR operates ASSET (1,000,000 units): ANN 500,000, BOB 300,000,
CAT 100,000, PAT 50,000, the pool 50,000; DAN is a member with none. ASSET has a
period (2027-Q1) opened through the outputs service; its record time is an hour after
the clock's start (2027-01-01), its request deadline ten days after.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.journal.write import Ledger
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.periods import PeriodTimes, open_period
from ledger.outputs.requests import submit_request

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(91), wallet(92), wallet(93), wallet(94)
CAT, PAT, DAN = wallet(95), wallet(96), wallet(97)
ASSET = "1M8GDM9AXKP042788"
PROBLEM = "application/problem+json"
START = datetime(2027, 1, 1, tzinfo=UTC)
RECORD = START + timedelta(hours=1)
DEADLINE = START + timedelta(days=10)


def rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class VotesWorld:
    """The app, its members signed in, ASSET issued and its period open."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        self.client = client
        self.clock = clock
        self.ledger: Ledger = cast(FastAPI, client.app).state.ledger
        self.keys = 0
        self.admin = sign_in(client, ADMIN)
        self.operator = sign_in(client, OPERATOR)
        self.ann, self.bob, self.cat = (
            sign_in(client, ANN),
            sign_in(client, BOB),
            sign_in(client, CAT),
        )
        self.pat, self.dan = sign_in(client, PAT), sign_in(client, DAN)
        self.ok(self.post("/v1/assets", self.admin, greenhouse(ASSET)))
        role = {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET}
        assert self.post("/v1/roles", self.admin, role).status_code == 204
        issue = {"allocations": [[ANN.address, "500000"], [BOB.address, "300000"],
                                 [CAT.address, "100000"], [PAT.address, "50000"]]}  # fmt: skip
        self.ok(self.post(f"/v1/assets/{ASSET}/issue", self.operator, issue))
        op = OPERATOR.address
        set_output_terms(self.ledger, ASSET, op, 1_000, key="terms", actor=ADMIN.address)
        define_output_kind(self.ledger, ASSET, "tomato", "g", key="kind", actor=op)
        times = PeriodTimes(START, START + timedelta(days=90), RECORD, DEADLINE)
        self.period = open_period(self.ledger, ASSET, "2027-Q1", times, key="open", actor=op).id

    def sign_in(self) -> None:
        """Fresh tokens for everyone (a token lives minutes; the tests move the clock days)."""
        self.admin = sign_in(self.client, ADMIN)
        self.operator = sign_in(self.client, OPERATOR)
        self.ann, self.bob = sign_in(self.client, ANN), sign_in(self.client, BOB)
        self.cat, self.pat = sign_in(self.client, CAT), sign_in(self.client, PAT)
        self.dan = sign_in(self.client, DAN)

    def later(self, moment: datetime) -> None:
        """Move the clock to ``moment`` and sign everyone in again."""
        self.clock.now = moment
        self.sign_in()

    def post(self, path: str, who: dict[str, str] | None, body: Any, key: str | None = None) -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        answer = self.client.get(path, headers=who or {}, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    @staticmethod
    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        found: dict[str, Any] = answer.json()
        return found

    def head(self) -> int:
        return int(self.get("/v1/digest")["seq"])

    def proposal_body(self, **changes: Any) -> dict[str, Any]:
        return {
            "title": "What to grow next season",
            "description": "Tomatoes or peppers in the south house.",
            "options": ["tomato", "pepper"],
            "record_at": rfc(RECORD),
            "deadline": rfc(DEADLINE),
            "quorum_bp": 5_000,
            "threshold_bp": 6_000,
            "period_id": self.period,
        } | changes

    def propose(self, key: str | None = None, **changes: Any) -> dict[str, Any]:
        path = f"/v1/assets/{ASSET}/proposals"
        return self.ok(self.post(path, self.operator, self.proposal_body(**changes), key))

    def vote(self, who: dict[str, str], proposal: int, option: Any, key: str | None = None) -> Any:
        return self.post(f"/v1/proposals/{proposal}/votes", who, {"option": option}, key)

    def work_body(self, **changes: Any) -> dict[str, Any]:
        return {
            "member": CAT.address,
            "period_id": self.period,
            "task": "harvest",
            "minutes": 90,
            "worked_on": rfc(RECORD + timedelta(hours=1)),
            "note": "south house",
        } | changes

    def everything(self) -> tuple[Any, ...]:
        """The journal's head, the asset's proposals with their results and ballots, the
        period's work logs and its participation."""
        proposals = self.get(f"/v1/assets/{ASSET}/proposals")["items"]
        return (
            self.head(),
            [self.get(f"/v1/proposals/{p['id']}") for p in proposals],
            [self.get(f"/v1/proposals/{p['id']}/ballots") for p in proposals],
            self.get(f"/v1/periods/{self.period}/work-logs", self.ann),
            self.get(f"/v1/periods/{self.period}/participation", self.ann),
        )


@pytest.fixture
def world(engine: Engine) -> Iterator[VotesWorld]:
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}))
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield VotesWorld(client, clock)


def problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == code, answer.text


# -- the whole way ----------------------------------------------------------------------------


def test_holders_vote_by_rights_and_anyone_reads_and_checks_the_result(world: VotesWorld) -> None:
    made = world.propose()
    pid = made["id"]
    assert made == {"id": pid, "asset_id": ASSET, "proposer": OPERATOR.address} | {
        k: v for k, v in world.proposal_body().items()
    } | {"record_at": "2027-01-01T01:00:00Z", "deadline": "2027-01-11T00:00:00Z"}
    problem(world.vote(world.ann, pid, "tomato"), 422, "voting_not_open")

    world.later(RECORD + timedelta(minutes=5))
    ann = world.ok(world.vote(world.ann, pid, "pepper", "ann-1"))
    assert {k: ann[k] for k in ("proposal_id", "voter", "option", "weight_units")} == {
        "proposal_id": pid, "voter": ANN.address, "option": "pepper", "weight_units": 500_000,
    }  # fmt: skip
    world.ok(world.vote(world.bob, pid, "pepper"))
    world.ok(world.vote(world.cat, pid, "tomato"))
    changed = world.ok(world.vote(world.ann, pid, "tomato", "ann-2"))  # ANN changes her mind
    assert changed["seq"] > ann["seq"]
    problem(world.vote(world.dan, pid, "tomato"), 403, "no_rights")
    problem(world.vote(world.ann, pid, "cabbage"), 422, "unknown_option")

    found = world.get(f"/v1/proposals/{pid}")  # public
    assert found["result"] == {
        "tally": [{"option": "tomato", "weight_units": 600_000},
                  {"option": "pepper", "weight_units": 300_000}],
        "weight_cast": 900_000,
        "eligible_weight": 950_000,  # the pool's 50,000 do not vote
        "turnout_bp": 9_473,
        "quorum_met": True,
        "leading": "tomato",
        "leading_share_bp": 6_666,
        "tied": False,
        "passed": True,
        "final": False,
    } | {"voters": 3}  # fmt: skip
    # Anyone checks each counted vote against its vote.cast entry in the journal.
    ballots = world.get(f"/v1/proposals/{pid}/ballots")["items"]
    assert [(b["voter"], b["option"], b["weight_units"]) for b in ballots] == sorted(
        [(ANN.address, "tomato", 500_000), (BOB.address, "pepper", 300_000),
         (CAT.address, "tomato", 100_000)]
    )  # fmt: skip
    entries = {e["seq"]: e for e in world.get("/v1/journal", kind="vote.cast")["items"]}
    for ballot in ballots:
        payload = entries[ballot["seq"]]["payload"]
        shown = {k: ballot[k] for k in ("voter", "option", "weight_units")}
        assert payload == {"proposal": pid, "asset_id": ASSET} | shown
    page = world.get(f"/v1/proposals/{pid}/ballots", limit=2)
    rest = world.get(f"/v1/proposals/{pid}/ballots", limit=2, cursor=page["next_cursor"])
    assert page["items"] + rest["items"] == ballots and rest["next_cursor"] is None

    world.later(DEADLINE)
    problem(world.vote(world.bob, pid, "tomato"), 422, "vote_deadline_passed")
    final = world.get(f"/v1/proposals/{pid}")["result"]
    assert final["final"] and final["passed"]
    listed = world.get(f"/v1/assets/{ASSET}/proposals")
    assert [p["id"] for p in listed["items"]] == [pid] and "result" not in listed["items"][0]


def test_the_operator_logs_work_and_members_read_who_took_part(world: VotesWorld) -> None:
    pid = world.propose()["id"]
    world.later(RECORD + timedelta(hours=2))
    world.ok(world.vote(world.ann, pid, "tomato"))  # ANN only votes
    submit_request(world.ledger, world.period, BOB.address, {"tomato": 10_000}, key="r",
                   actor=BOB.address)  # fmt: skip  # BOB only asks for outputs
    logged = world.ok(
        world.post(f"/v1/assets/{ASSET}/work-logs", world.operator, world.work_body())
    )
    assert logged == {"seq": logged["seq"], "asset_id": ASSET, "recorded_by": OPERATOR.address} | (
        world.work_body() | {"worked_on": "2027-01-01T02:00:00Z"}
    )
    second = world.work_body(task="pruning", minutes=45, note="")
    world.ok(world.post(f"/v1/assets/{ASSET}/work-logs", world.operator, second))
    logs = world.get(f"/v1/periods/{world.period}/work-logs", world.pat)
    assert [(w["task"], w["minutes"]) for w in logs["items"]] == [("pruning", 45), ("harvest", 90)]

    report = world.get(f"/v1/periods/{world.period}/participation", world.pat)
    assert (report["members"], report["took_part"], report["took_no_part"]) == (4, 3, 1)
    assert (report["period_id"], report["asset_id"], report["provisional"]) == (
        world.period, ASSET, False,
    )  # fmt: skip
    rows = {r["member"]: r for r in report["items"]}
    assert rows[CAT.address] == {
        "member": CAT.address, "owned_units": 100_000, "rights_units": 100_000,
        "requested": False, "votes": 0, "work_minutes": 135, "took_part": True,
        "work_by_task": [{"task": "harvest", "minutes": 90}, {"task": "pruning", "minutes": 45}],
    }  # fmt: skip
    assert (rows[ANN.address]["votes"], rows[BOB.address]["requested"]) == (1, True)
    idle = world.get(f"/v1/periods/{world.period}/participation", world.pat, took_part="false")
    assert [r["member"] for r in idle["items"]] == [PAT.address]


# -- who may do what ------------------------------------------------------------------------


def test_access_to_each_write_route(world: VotesWorld) -> None:
    proposals = f"/v1/assets/{ASSET}/proposals"
    work = f"/v1/assets/{ASSET}/work-logs"
    world.later(RECORD + timedelta(hours=2))
    pid = world.propose()["id"]
    votes = f"/v1/proposals/{pid}/votes"
    routes = [
        (proposals, world.proposal_body(), world.ann, "not_operator", world.operator),
        (work, world.work_body(), world.ann, "not_operator", world.operator),
        (votes, {"option": "tomato"}, world.dan, "no_rights", world.ann),
    ]
    for path, body, other, code, rightful in routes:
        before = world.everything()
        problem(world.post(path, None, body), 401, "credentials_missing")
        problem(world.post(path, other, body), 403, code)
        assert world.everything() == before
        assert world.post(path, rightful, body).status_code == 201
    # An admin may do what the operator does.
    assert world.post(proposals, world.admin, world.proposal_body()).status_code == 201
    assert world.post(work, world.admin, world.work_body()).status_code == 201
    # Reading work and participation takes a sign-in; proposals and ballots do not.
    for path in (
        f"/v1/periods/{world.period}/work-logs",
        f"/v1/periods/{world.period}/participation",
    ):
        problem(world.client.get(path), 401, "credentials_missing")
    for path in (proposals, f"/v1/proposals/{pid}", f"/v1/proposals/{pid}/ballots"):
        assert world.client.get(path).status_code == 200


# -- idempotency --------------------------------------------------------------------------------


def test_a_repeated_post_answers_the_same_and_another_body_is_refused(world: VotesWorld) -> None:
    world.later(RECORD + timedelta(hours=2))
    made = world.post(f"/v1/assets/{ASSET}/proposals", world.operator, world.proposal_body(), "p")
    pid = made.json()["id"]
    cases = [
        (f"/v1/assets/{ASSET}/proposals", world.operator, world.proposal_body(), made.json(),
         world.proposal_body(title="Another question"), "p"),
        (f"/v1/proposals/{pid}/votes", world.ann, {"option": "tomato"}, None, {"option": "pepper"},
         "v"),
        (f"/v1/assets/{ASSET}/work-logs", world.operator, world.work_body(), None,
         world.work_body(minutes=91), "w"),
    ]  # fmt: skip
    for path, who, body, first, other, key in cases:
        answer = first or world.ok(world.post(path, who, body, key))
        head = world.head()
        again = world.post(path, who, body, key)
        assert again.status_code == 201 and again.json() == answer
        assert world.head() == head
        problem(world.post(path, who, other, key), 409, "idempotency_conflict")
        missing = world.client.post(path, json=body, headers=who)
        problem(missing, 400, "idempotency_key_missing")
        assert world.head() == head


# -- hostile bodies and refusals ----------------------------------------------------------------

LONG = "x" * 10_000


def test_hostile_bodies_and_bad_input_are_problems_and_change_nothing(world: VotesWorld) -> None:
    world.later(RECORD + timedelta(hours=2))
    pid = world.propose()["id"]
    b, w = world.proposal_body, world.work_body
    invalid = (422, "request_invalid")
    cases: list[tuple[str, dict[str, str], Any, tuple[int, str]]] = [
        *[(f"/v1/assets/{ASSET}/proposals", world.operator, body, invalid) for body in (
            b(title=""), b(title="t" * 201), b(description="d" * 2_001), b(options=["one"]),
            b(options=[f"o{i}" for i in range(11)]), b(options=["yes", "n" * 65]),
            b(options="yes,no"), b(options=[1, 2]), b(quorum_bp=10_001), b(quorum_bp=-1),
            b(quorum_bp=10**30), b(quorum_bp="5000"), b(quorum_bp=True), b(quorum_bp=50.0),
            b(threshold_bp=5_000), b(threshold_bp=10_001), b(record_at=1_800_000_000),
            b(deadline="2027-02-30T00:00:00Z"), b(deadline="tomorrow"), b(period_id=0),
            b(period_id=2**63), b(extra=1), LONG, [b()], None,
        )],
        (f"/v1/assets/{ASSET}/proposals", world.operator, b(options=["a", "a"]),
         (422, "options_not_distinct")),
        (f"/v1/assets/{ASSET}/proposals", world.operator, b(record_at=rfc(DEADLINE)),
         (422, "record_after_deadline")),
        (f"/v1/assets/{ASSET}/proposals", world.operator,
         b(record_at=rfc(START), deadline=rfc(RECORD)), (422, "deadline_passed")),
        (f"/v1/assets/{ASSET}/proposals", world.operator,
         b(deadline=rfc(START + timedelta(days=400))), (422, "deadline_too_far")),
        (f"/v1/assets/{ASSET}/proposals", world.operator, b(period_id=10**9),
         (404, "unknown_period")),
        (f"/v1/assets/{ASSET}/proposals", world.operator, b(title="a\nb"),
         (422, "field_control_character")),
        ("/v1/assets/1M8GDM9AXKP04278/proposals", world.admin, b(), (422, "asset_id_length")),
        *[(f"/v1/proposals/{pid}/votes", world.ann, body, invalid) for body in (
            {"option": ""}, {"option": "o" * 65}, {"option": 1}, {"option": None}, {},
            {"option": "tomato", "voter": DAN.address}, {"option": LONG},
        )],
        ("/v1/proposals/999999/votes", world.ann, {"option": "tomato"}, (404, "unknown_proposal")),
        *[(f"/v1/assets/{ASSET}/work-logs", world.operator, body, invalid) for body in (
            w(minutes=0), w(minutes=44_641), w(minutes=1.5), w(minutes="90"), w(task="Harvest"),
            w(task="h" * 33), w(note="n" * 201), w(member=LONG), w(period_id=2**63),
            w(worked_on=None), w(hours=1),
        )],
        (f"/v1/assets/{ASSET}/work-logs", world.operator,
         w(worked_on=rfc(START - timedelta(days=1))), (422, "worked_on_outside_period")),
        (f"/v1/assets/{ASSET}/work-logs", world.operator, w(worked_on=rfc(DEADLINE)),
         (422, "worked_on_in_future")),
        (f"/v1/assets/{ASSET}/work-logs", world.operator, w(member=DAN.address.lower()),
         (422, "address_checksum")),
        (f"/v1/assets/{ASSET}/work-logs", world.operator,
         w(member="0x13fbaFdeEe7fefcBe2f5d3Cb088603d5e1c0e0E4"), (404, "unknown_member")),
    ]  # fmt: skip
    before = world.everything()
    for path, who, body, (status, code) in cases:
        problem(world.post(path, who, body), status, code)
    assert world.everything() == before
    # At the limits: accepted.
    widest = [f"{i}" + "o" * 63 for i in range(10)]
    world.propose(options=widest, title="t" * 200, description="d" * 2_000, quorum_bp=10_000,
                  threshold_bp=10_000, deadline=rfc(START + timedelta(days=364)))  # fmt: skip
    world.ok(world.post(f"/v1/assets/{ASSET}/work-logs", world.operator,
                        w(minutes=44_640, task="h" * 32, note="n" * 200)))  # fmt: skip
    # Reads refuse what is out of range, and what does not exist.
    for path, status, code in (
        ("/v1/proposals/0", 422, "request_invalid"),
        ("/v1/proposals/999999", 404, "unknown_proposal"),
        ("/v1/proposals/999999/ballots", 404, "unknown_proposal"),
        (f"/v1/assets/{ASSET}/proposals?limit=201", 422, "request_invalid"),
        ("/v1/assets/1M8GDM9A0KP061401/proposals", 404, "unknown_asset"),
    ):
        problem(world.client.get(path), status, code)
    for path in ("/v1/periods/999999/work-logs", "/v1/periods/999999/participation"):
        problem(world.client.get(path, headers=world.ann), 404, "unknown_period")
