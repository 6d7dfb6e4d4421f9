"""Reading through the real app, on both databases: the journal by kind, member, asset,
currency and account; holdings and cap tables as of a seq or a time; and times or texts
no database can keep, refused with a problem that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(41), wallet(42), wallet(43), wallet(44)
ASSET = "1M8GDM9AXKP042788"
DEED = "ab" * 32


class Network:
    """An asset with 600,000 units issued to ANN and 400,000 to BOB, EUR deposited for
    BOB, then (a minute later) a transfer of 1,000 units from ANN to BOB."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        self.client = client
        self.keys = 0
        admin = sign_in(client, ADMIN)
        self.ann = sign_in(client, ANN)
        sign_in(client, BOB)
        asset = greenhouse(ASSET)
        self.post("/v1/assets", admin, asset)
        operator = sign_in(client, OPERATOR)
        self.post(f"/v1/assets/{ASSET}/operators", admin, {"address": OPERATOR.address}, 204)
        allocations = [[ANN.address, "600000"], [BOB.address, "400000"]]
        self.post(f"/v1/assets/{ASSET}/issue", operator, {"allocations": allocations})
        deposit = {"member": BOB.address, "currency": "EUR", "amount": "5000", "reference": "r"}
        self.post("/v1/deposits", admin, deposit)
        self.before_transfer = clock.now
        clock.advance(60)
        units = f"units:{ASSET}"
        body = {"recipient": BOB.address, "instrument": units, "amount": "1000"}
        self.transfer_seq: int = self.post("/v1/transfers", self.ann, body)["seq"]

    def post(self, path: str, who: dict[str, str], body: Any, status: int = 201) -> Any:
        self.keys += 1
        headers = who | {"Idempotency-Key": f"k{self.keys}"}
        response = self.client.post(path, json=body, headers=headers)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def kinds(self, **filters: str) -> list[str]:
        response = self.client.get("/v1/journal", params=filters)
        assert response.status_code == 200, response.text
        return [entry["kind"] for entry in response.json()["items"]]

    def digest(self) -> Any:
        return self.client.get("/v1/digest").json()


@pytest.fixture
def network(engine: Engine) -> Iterator[Network]:
    clock = MovableClock()
    app = create_app(Settings(admins=frozenset({ADMIN.address})), engine=engine, clock=clock)
    with TestClient(app) as client:
        yield Network(client, clock)


def test_the_journal_filters_by_kind_member_instrument_and_account(network: Network) -> None:
    assert network.kinds(kind="transfer") == ["transfer"]
    assert network.kinds(asset=ASSET) == ["transfer", "asset.issue", "asset.register"]
    assert network.kinds(currency="EUR") == ["cash.deposit"]
    assert network.kinds(member=ANN.address) == ["transfer", "asset.issue"]
    # A member with an instrument names one account.
    assert network.kinds(member=BOB.address, currency="EUR") == ["cash.deposit"]
    assert network.kinds(member=ANN.address, currency="EUR") == []
    assert network.kinds(member=BOB.address, asset=ASSET, kind="asset.issue") == ["asset.issue"]


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ({"asset": ASSET, "currency": "EUR"}, "filter_instrument"),
        ({"currency": "eur"}, "currency_malformed"),
        ({"asset": "1M8GDM9AYKP042788"}, "asset_id_check_digit"),
        ({"member": ANN.address.lower()}, "address_checksum"),
    ],
)
def test_a_malformed_journal_filter_is_a_problem(
    network: Network, filters: dict[str, str], code: str
) -> None:
    response = network.client.get("/v1/journal", params=filters)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_holdings_and_cap_tables_as_of_a_seq_or_a_time(network: Network) -> None:
    client, units = network.client, f"units:{ASSET}"

    def mine(**at: str | int) -> dict[str, str]:
        response = client.get("/v1/holdings/me", params=at, headers=network.ann)
        assert response.status_code == 200, response.text
        return {h["instrument"]: h["balance"] for h in response.json()}

    def cap(**at: str | int) -> dict[str, str]:
        response = client.get(f"/v1/assets/{ASSET}/cap-table", params=at)
        assert response.status_code == 200, response.text
        return {h["holder"]: h["units"] for h in response.json()["holders"]}

    before = network.before_transfer.isoformat()
    assert mine() == {units: "599000"}
    assert mine(as_of_seq=network.transfer_seq - 1) == {units: "600000"}
    assert mine(as_of_time=before) == {units: "600000"}
    assert mine(as_of_seq=1) == {}
    ann, bob = f"member:{ANN.address}", f"member:{BOB.address}"
    assert cap() == {ann: "599000", bob: "401000"}
    assert cap(as_of_time=before) == {ann: "600000", bob: "400000"}
    assert cap(as_of_seq=network.transfer_seq) == cap()
    long_ago = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    assert cap(as_of_time=long_ago) == {}


def test_concurrent_holdings_reads_each_answer_their_own_member(network: Network) -> None:
    # Reads of now asked for together share one statement: each caller must still get
    # its own holdings, exactly as a read alone gives them.
    client, units = network.client, f"units:{ASSET}"
    callers = [network.ann, sign_in(client, BOB), sign_in(client, OPERATOR)]
    alone = [client.get("/v1/holdings/me", headers=who).json() for who in callers]
    assert alone[0] == [
        {"instrument": units, "balance": "599000", "held": "0", "available": "599000"}
    ]
    assert [h["instrument"] for h in alone[1]] == ["ccy:EUR", units]
    assert alone[2] == []

    async def together() -> list[Any]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as concurrent:
            answers = await asyncio.gather(
                *(concurrent.get("/v1/holdings/me", headers=who) for who in callers * 10)
            )
        assert {a.status_code for a in answers} == {200}
        return [a.json() for a in answers]

    assert asyncio.run(together()) == alone * 10


MISTYPED_UNITS = "units:1M8GDM9AYKP042788"
TWICE = [{"title": "Deed", "sha256": DEED}, {"title": "Copy", "sha256": DEED}]
ASSET_TWICE_DOCUMENTED = {
    "id": "11111111111111111",
    "make": "m",
    "model": "m",
    "serial": "s",
    "location": "l",
    "jurisdiction": "NL",
    "documents": TWICE,
}


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        # Year 1 at +14:00 is year 0 in UTC; 9999-12-31T23-02:00 is year 10000.
        ("GET", "/v1/holdings/me?as_of_time=0001-01-01T00:00:00%2B14:00", None,
         "time_out_of_range"),
        ("GET", f"/v1/assets/{ASSET}/cap-table?as_of_time=9999-12-31T23:00:00-02:00", None,
         "time_out_of_range"),
        ("POST", "/v1/transfers",
         {"recipient": BOB.address, "instrument": "ccy:EUR", "amount": "1", "memo": "a\x00b"},
         "text_nul"),
        ("POST", "/v1/transfers",
         {"recipient": BOB.address, "instrument": MISTYPED_UNITS, "amount": "1"},
         "asset_id_check_digit"),
        ("POST", "/v1/assets", ASSET_TWICE_DOCUMENTED, "document_repeated"),
    ],
)  # fmt: skip
def test_what_no_database_can_keep_is_refused_and_changes_nothing(
    network: Network, method: str, path: str, body: Any, code: str
) -> None:
    before = network.digest()
    headers = network.ann | {"Idempotency-Key": "bad"}
    if path == "/v1/assets":  # registering takes an admin
        headers = sign_in(network.client, ADMIN) | {"Idempotency-Key": "bad"}
    response = network.client.request(method, path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert network.digest() == before


def test_a_read_as_of_a_seq_beyond_the_head_is_refused_and_now_says_its_seq(
    network: Network,
) -> None:
    client, head = network.client, network.digest()["seq"]
    for path, who in (("/v1/holdings/me", network.ann), (f"/v1/assets/{ASSET}/cap-table", {})):
        beyond = client.get(path, params={"as_of_seq": head + 1}, headers=who)
        assert beyond.status_code == 422, beyond.text
        assert beyond.json()["code"] == "as_of_seq_beyond_head"
        assert beyond.json()["head_seq"] == head
        both = client.get(
            path, params={"as_of_seq": 1, "as_of_time": "2027-01-01T00:00:00Z"}, headers=who
        )
        assert both.status_code == 422 and both.json()["code"] == "as_of_ambiguous"
        at_head = client.get(path, params={"as_of_seq": head}, headers=who)
        assert at_head.status_code == 200, at_head.text
    # Now: the table says the seq it was read at, and reading that seq later gives it again.
    now = client.get(f"/v1/assets/{ASSET}/cap-table").json()
    assert now["as_of_seq"] == head
    network.post("/v1/deposits", sign_in(client, ADMIN), {
        "member": ANN.address, "currency": "EUR", "amount": "1", "reference": "later"
    })  # fmt: skip
    again = client.get(f"/v1/assets/{ASSET}/cap-table", params={"as_of_seq": head}).json()
    assert again == now
    # A time still to come reads the head, and says so.
    future = client.get(
        f"/v1/assets/{ASSET}/cap-table", params={"as_of_time": "2999-01-01T00:00:00Z"}
    )
    assert future.json()["as_of_seq"] == head + 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("line one\nline two", "field_control_character"),
        ("tab\there", "field_control_character"),
        ("invoice\u202efdp.exe", "field_bidi_control"),
        ("isolate\u2066x\u2069", "field_bidi_control"),
        ("   ", "field_empty"),
        ("\u200b\u200c\u200d", "field_empty"),
        ("\u200b \u2060 \ufeff", "field_empty"),
        ("Mara\u2028Admin", "field_control_character"),  # a line separator
        ("Mara\u2029Admin", "field_control_character"),
        ("ok\U000e0041\U000e0042", "field_control_character"),  # tags: text nobody sees
        ("ok\ufff9hidden\ufffb", "field_control_character"),
        ("\u3164", "field_empty"),  # the Hangul filler, drawn as nothing
        ("\u2800\uffa0", "field_empty"),
        ("\u200e\u200f\u061c", "field_empty"),  # direction marks alone
        ("\u2063\u034f\ufe0f", "field_empty"),
        ("\u00a0\u3000", "field_empty"),
    ],
)
def test_texts_for_people_must_show_what_they_say(network: Network, text: str, code: str) -> None:
    client, admin = network.client, sign_in(network.client, ADMIN)
    head = network.digest()
    attempts = [
        ("PATCH", "/v1/members/me", network.ann, {"name": text}),
        ("POST", "/v1/api-keys", network.ann, {"name": text}),
        ("POST", "/v1/transfers", network.ann,
         {"recipient": BOB.address, "instrument": f"units:{ASSET}", "amount": "1", "memo": text}),
        ("POST", "/v1/deposits", admin,
         {"member": BOB.address, "currency": "EUR", "amount": "1", "reference": text}),
        ("POST", "/v1/assets", admin, greenhouse("11111111111111111") | {"make": text}),
        ("POST", "/v1/assets", admin,
         greenhouse("11111111111111111") | {"documents": [{"title": text, "sha256": DEED}]}),
    ]  # fmt: skip
    for i, (method, path, who, body) in enumerate(attempts):
        headers = who | {"Idempotency-Key": f"text{i}"}
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["code"] == code, (path, answer.text)
    assert network.digest() == head  # nothing was written
    for i, name in enumerate(
        (
            "Ann \u00e9\u200dB",
            "\U0001f469\u200d\U0001f33e farm",  # an emoji sequence
            "\u0645\u0631\u0627\u200f 2",  # Arabic with a direction mark
            "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
            "\u03b1\u0301",  # a letter and its combining accent
        )
    ):
        fine = client.patch(
            "/v1/members/me",
            json={"name": name},
            headers=network.ann | {"Idempotency-Key": f"ok{i}"},
        )
        assert fine.status_code == 200, fine.text
