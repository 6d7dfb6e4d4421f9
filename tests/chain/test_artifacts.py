"""The committed artifacts: what a fresh compile with the pinned solc-js gives, byte for
byte; loadable by name; and the escrow's interface the one issue 11 names."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import contracts.artifact
from contracts import (
    BrokenArtifact,
    UnknownArtifact,
    artifact_names,
    load_artifact,
)

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
PACKAGE = json.loads((CONTRACTS / "package.json").read_text())
NODE = shutil.which("node")
NO_NODE = (
    "node is not installed: the contracts cannot be recompiled here"
    " (Python uses the committed artifacts)"
)


def _node_modules_or_fail() -> None:
    if not (CONTRACTS / "node_modules" / "solc").is_dir():
        pytest.fail(
            "contracts/node_modules is missing: run `npm ci` in contracts/ (`make test` does)"
        )


@pytest.mark.skipif(NODE is None, reason=NO_NODE)
def test_the_committed_artifacts_are_what_the_pinned_compiler_makes(tmp_path: Path) -> None:
    _node_modules_or_fail()
    assert NODE is not None
    subprocess.run(
        [NODE, "compile.mjs", "--out", str(tmp_path)],
        cwd=CONTRACTS,
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.json"))}
    committed = {p.name: p.read_bytes() for p in sorted((CONTRACTS / "artifacts").glob("*.json"))}
    assert sorted(fresh) == sorted(committed), "artifacts added or removed: run `npm run compile`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale artifacts (run `npm run compile` in contracts/): {stale}"


@pytest.mark.skipif(NODE is None, reason=NO_NODE)
def test_the_pinned_anvil_runs() -> None:
    _node_modules_or_fail()
    out = subprocess.run(
        [str(CONTRACTS / "node_modules" / ".bin" / "anvil"), "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f"anvil Version: {PACKAGE['devDependencies']['@foundry-rs/anvil']}" in out


def test_every_artifact_loads_with_the_pinned_compiler_and_settings() -> None:
    pinned = PACKAGE["devDependencies"]["solc"]
    assert set(artifact_names()) >= {
        "EthPledgeEscrow",
        "TokenPledgeEscrow",
        "PledgeEscrowFactory",
    }
    for name in artifact_names():
        artifact = load_artifact(name)
        assert artifact.name == name
        assert artifact.compiler_version.startswith(f"{pinned}+")
        assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 2
        assert artifact.deployed_bytecode.startswith("0x")
        raw = json.loads((CONTRACTS / "artifacts" / f"{name}.json").read_text())
        assert raw["compiler"]["settings"]["evmVersion"] == "cancun"
        assert raw["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}


@pytest.mark.parametrize("name", ["Nope", "../package", "EthPledgeEscrow.json", "", "PledgeEscrow"])
def test_an_unknown_name_is_refused_with_the_names_there_are(name: str) -> None:
    with pytest.raises(UnknownArtifact) as refused:
        load_artifact(name)
    assert refused.value.code == "unknown_artifact"
    assert "EthPledgeEscrow" in refused.value.message


def test_an_artifact_missing_its_bytecode_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "Broken.json").write_text('{"abi": [], "compiler": {"version": "x"}}')
    monkeypatch.setattr(contracts.artifact, "files", lambda _package: tmp_path)
    with pytest.raises(BrokenArtifact) as broken:
        load_artifact.__wrapped__("Broken")
    assert broken.value.code == "broken_artifact"
    assert "bytecode" in broken.value.message


def _interface(name: str) -> dict[str, set[str]]:
    by_kind: dict[str, set[str]] = {"function": set(), "event": set(), "error": set()}
    for element in load_artifact(name).abi:
        if element["type"] in by_kind:
            inputs = element.get("inputs", [])
            assert isinstance(inputs, list)
            types = ",".join(str(i["type"]) for i in inputs)
            by_kind[element["type"]].add(f"{element.get('name')}({types})")
    return by_kind


COMMON_VIEWS = {
    "goal()",
    "deadline()",
    "organizer()",
    "minPledge()",
    "totalPledged()",
    "pledgeOf(address)",
    "state()",
}
COMMON_EVENTS = {
    "Pledged(address,uint256,uint256)",
    "Withdrawn(address,uint256,uint256)",
    "Finalized(address,uint256)",
    "Reclaimed(address,uint256)",
}
COMMON_ERRORS = {
    "ZeroOrganizer()",
    "ZeroGoal()",
    "DeadlineNotInFuture(uint256,uint256)",
    "MinimumAboveGoal(uint256,uint256)",
    "ZeroPledge()",
    "PledgeBelowMinimum(uint256,uint256)",
    "PledgeAfterDeadline(uint256,uint256)",
    "AlreadyFinalized()",
    "WithdrawAfterGoal()",
    "WithdrawAfterDeadline(uint256,uint256)",
    "NothingToWithdraw()",
    "GoalNotReached(uint256,uint256)",
    "GoalReached(uint256,uint256)",
    "DeadlineNotPassed(uint256,uint256)",
    "NothingToReclaim()",
    "ReentrancyGuardReentrantCall()",
}


def test_the_eth_escrow_has_the_interface_of_the_issue() -> None:
    found = _interface("EthPledgeEscrow")
    assert found["function"] == COMMON_VIEWS | {"pledge()", "withdraw()", "finalize()", "reclaim()"}
    assert found["event"] == COMMON_EVENTS
    assert found["error"] == COMMON_ERRORS | {"TransferFailed()"}


def test_the_token_escrow_has_the_interface_of_the_issue() -> None:
    found = _interface("TokenPledgeEscrow")
    assert found["function"] == COMMON_VIEWS | {
        "pledge(uint256)",
        "withdraw()",
        "finalize()",
        "reclaim()",
        "token()",
    }
    assert found["event"] == COMMON_EVENTS
    assert found["error"] == COMMON_ERRORS | {"ZeroToken()", "SafeERC20FailedOperation(address)"}


def test_the_factory_announces_each_escrow() -> None:
    found = _interface("PledgeEscrowFactory")
    assert found["function"] == {
        "createEthEscrow(bytes32,address,uint256,uint256,uint256)",
        "createTokenEscrow(bytes32,address,address,uint256,uint256,uint256)",
        "escrowOf(address,bytes32)",
    }
    assert found["event"] == {
        "EscrowCreated(bytes32,address,address,address,uint256,uint256,uint256,address)"
    }
