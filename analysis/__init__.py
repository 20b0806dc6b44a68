"""Post-call analysis: analysis workers, manager runs, CSV and PDF reports (docs/analysis.md)."""
