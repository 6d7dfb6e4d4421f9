"""Compiled contracts, read from the JSON artifacts that ``compile.mjs`` writes into
``contracts/artifacts/`` and that are committed, so nothing here needs node at run time."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, cast

from eth_typing import ABI, HexStr

from contracts.errors import BrokenArtifact, UnknownArtifact

__all__ = ["Artifact", "artifact_names", "load_artifact"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ARTIFACTS = "artifacts"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One compiled contract: what web3 needs to deploy it and to talk to it."""

    name: str
    abi: ABI
    bytecode: HexStr
    deployed_bytecode: HexStr
    compiler_version: str


def artifact_names() -> tuple[str, ...]:
    """The names of every shipped artifact, sorted."""
    folder = files("contracts") / _ARTIFACTS
    return tuple(
        sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))
    )


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (e.g. ``EthPledgeEscrow``).

    Raises ``UnknownArtifact`` for a name that is not shipped (the message lists those
    that are) and ``BrokenArtifact`` for a file that lacks abi, bytecode or compiler version.
    """
    if not _NAME.fullmatch(name) or name not in artifact_names():
        raise UnknownArtifact(
            "unknown_artifact",
            f"no compiled contract named {name!r}; there are: {', '.join(artifact_names())}",
        )
    text = (files("contracts") / _ARTIFACTS / f"{name}.json").read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    try:
        abi, bytecode, deployed = raw["abi"], raw["bytecode"], raw["deployedBytecode"]
        version = raw["compiler"]["version"]
    except (KeyError, TypeError) as missing:
        raise BrokenArtifact("broken_artifact", f"{name}.json lacks {missing}") from None
    if not isinstance(abi, list) or not all(
        isinstance(code, str) and code.startswith("0x") and len(code) > 2
        for code in (bytecode, deployed)
    ):
        raise BrokenArtifact("broken_artifact", f"{name}.json: abi or bytecode malformed")
    # The one place the JSON becomes typed: the file is written by solc's own ABI output.
    return Artifact(
        name=name,
        abi=cast(ABI, abi),
        bytecode=HexStr(bytecode),
        deployed_bytecode=HexStr(deployed),
        compiler_version=str(version),
    )
