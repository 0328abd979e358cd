"""AuroraRestoreSchedule: create AuroraRestores on a cron schedule (cron.py decides when, controller.py acts)."""
