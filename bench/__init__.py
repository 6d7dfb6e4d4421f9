"""Reproducible benchmarks: each prints JSON and compares against a baseline measured in
the same run (CONVENTIONS.md, "Tests").

``dpn bench NAME`` runs ``bench.NAME.main``: ``ledger`` (write throughput against a
raw-insert floor), ``market`` (the matching book against pyorderbook and a floor book)
and ``http`` (the real server's requests per second and latency). ``harness`` is what
they share: a fresh migrated database and a stopwatch.
"""
