"""ledger: a penalty-and-incentive ledger for e-commerce customer-service teams."""

__version__ = "0.1.0"
