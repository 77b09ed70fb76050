"""Data management: sites, replication rules, transfers with per-hop adler32, raw-data intake.

Layers (imports point down): config/errors/checksum -> storage, states, routing -> tables,
ledger -> replicator -> intake, views -> demo, cli.
"""
