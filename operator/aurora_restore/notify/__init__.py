"""Notifications of a restore's phases: the payload, where it may go, and its delivery (docs/notifications.md)."""
