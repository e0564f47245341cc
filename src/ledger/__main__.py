"""`python -m ledger` is the `ledger` command (same exit codes)."""

import sys

from ledger.cli import main

sys.exit(main())
