"""The pledge escrow contracts: Solidity sources (``src/``), the pinned solc-js setup
(``package.json``, ``compile.mjs``), the compiled artifacts (``artifacts/``, committed, so
Python needs no node at run time), a loader, and a decoder for their custom errors.

See ``contracts/README.md`` for the contracts' interface and the decisions behind it.
"""

from contracts.artifact import Artifact, artifact_names, load_artifact
from contracts.errors import BrokenArtifact, ContractsError, UndecodableRevert, UnknownArtifact
from contracts.revert import DecodedError, decode_custom_error, error_selectors

__all__ = [
    "Artifact",
    "BrokenArtifact",
    "ContractsError",
    "DecodedError",
    "UndecodableRevert",
    "UnknownArtifact",
    "artifact_names",
    "decode_custom_error",
    "error_selectors",
    "load_artifact",
]
