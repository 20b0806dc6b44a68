"""A run's reports: the CSV (one row per call) and the PDF (for a person to look at)."""
