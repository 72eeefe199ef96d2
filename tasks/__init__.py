"""Prefect tasks, grouped by stage. Tasks do the I/O; decisions live in intelligence/."""
