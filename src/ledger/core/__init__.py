"""core: what every stage shares, and nothing above it.

Errors as data (`Diagnostic` with file:line:col, `LedgerError` with an exit code),
ledger entries with their stable `entry_id`, money (Decimal 元, half-up to the 分,
`Percent`), the billing month and how wall times are written, atomic file writes, and
the display width of CJK text. Imports nothing from the rest of ledger.
"""
