"""Solidity sources of the escrow contract, the pinned solc-js setup, compiled artifacts
and their loader. The escrow arrives with the projects-and-pledges work; until then this
package is empty by design (it is part of the distribution's layout)."""

__all__: list[str] = []
