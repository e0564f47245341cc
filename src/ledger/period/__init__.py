"""period: a payroll month's lifecycle: run, adjust, close, correct, verify.

`adjustments` reads the dispute and waiver files (`adjustments/*.txt`), `close` seals a
month and keeps its entries, `register` keeps the register of closed months outside the
month folders and checks every seal against it, and `lifecycle` runs a month end to end: the engine's
entries, then adjustments, then corrections of closed months, then the outputs.
Imports core, lang, inputs, evaluate and outputs.
"""
