"""The event store: catalog database (runs, files, checksums, parentage, datasets)."""
