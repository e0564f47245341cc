"""sample: a realistic synthetic month of customer-service exports (示例数据).

`generator.generate` writes a month of events for a shop from the tables in `phrases`
through streaming `sink` writers; deterministic for a seed. Imports only ledger.core.
"""
