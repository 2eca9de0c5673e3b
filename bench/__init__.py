"""`make bench`: performance measurements (not tests; figures are printed, not asserted)."""
