"""Audit before publish: checks derived from the shared schemas, quarantine of bad rows."""
