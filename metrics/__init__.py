"""Prometheus `/metrics` for any of our processes: the text exposition of the default registry
(or, under PROMETHEUS_MULTIPROC_DIR, of every process that writes there), as a route to add to
an aiohttp app or as a small server of its own. Each process defines its own metrics next to
the code that moves them; this package only serves them and depends on nothing of ours."""

from metrics.exposition import add_metrics_route, render, start_metrics_server

__all__ = ["add_metrics_route", "render", "start_metrics_server"]
