"""Shared by every test tier: makes tests/ importable, so e2e tests can use the chart tests' helm wrapper
(`from chart.helm_cli import Helm`)."""
