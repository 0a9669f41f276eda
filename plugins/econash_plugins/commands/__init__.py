"""Command-line commands that plugins add: `econash compare` (with its report) and `econash score`."""
