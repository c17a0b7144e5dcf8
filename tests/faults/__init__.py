"""One module per installed integration: its service in the fault matrix (see tests/support/faults.py)."""
