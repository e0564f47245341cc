"""evaluate: a checked policy over a month's events → ledger entries.

`engine.run_policy` is a short sequence of stages: load the events (ledger.inputs) into
DuckDB, compile each rule to set-based SQL (`compile`) and run it, turn result rows into
entries with evidence (`evidence`), escalate repeated fines and evaluate monthly rules
over metrics (`monthly`, `metrics`), then apply caps and floors per employee (`caps`).
Entries in, entries out after the first stage. Imports core, lang and inputs.
"""
