"""Example third-party econash plugin."""
