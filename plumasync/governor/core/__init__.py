"""The governor's pure core: budget state, rate-limit header parsing and the window arithmetic (no I/O)."""
