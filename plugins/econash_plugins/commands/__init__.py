"""Command-line commands that plugins add: `econash compare` (with its report) and `econash score`;
`econash runs`, `show` and `report` for looking at results (docs/reports.md)."""
