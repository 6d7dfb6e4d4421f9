"""The errors of the ``contracts`` package, each with a stable ``code``::

ContractsError                 code: str, message: str
├── UnknownArtifact            unknown_artifact: no compiled contract by that name
├── BrokenArtifact             broken_artifact: the artifact file is not what compile.mjs writes
└── UndecodableRevert          revert_too_short, unknown_revert_selector,
                               revert_args_malformed: revert data the ABI cannot name
"""

from __future__ import annotations

__all__ = ["BrokenArtifact", "ContractsError", "UndecodableRevert", "UnknownArtifact"]


class ContractsError(Exception):
    """Base of every error of the ``contracts`` package: a stable code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class UnknownArtifact(ContractsError):
    """No artifact of that name is shipped; the message lists the names there are."""


class BrokenArtifact(ContractsError):
    """An artifact file exists but lacks what the loader needs (a hand edit, a bad merge)."""


class UndecodableRevert(ContractsError):
    """Revert data that is too short to carry a selector, or whose selector the ABI lacks."""
