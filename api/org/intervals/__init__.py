"""Shifts and busy intervals: when agents work and when they cannot."""
