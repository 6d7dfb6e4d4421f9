"""What an asset's units give their holders: outputs, buy-outs, votes and participation.

DESIGN.md ("Outputs and entitlements", "Ownership terms", "Participation"). Every change
is one journal entry, with the rows the service keeps beside it written in the same
transaction; rights at a record time come from ``ledger.rights``.
"""
