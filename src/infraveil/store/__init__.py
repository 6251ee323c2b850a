"""Durable state: the SQLite store (instances, events, service records) and instance log files."""
