"""Capability-based live calls: slots, bookings, and the just-in-time binding of an agent."""
