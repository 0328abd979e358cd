"""Observability: Prometheus metrics of restores (logging goes through kopf's per-object logger)."""
