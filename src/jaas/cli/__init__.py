"""The ``jaas`` command line: one sub-command module per layer, loaded on demand."""
