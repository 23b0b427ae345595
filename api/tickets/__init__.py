"""Tickets: the helpdesk's source of truth (create/update, status, history)."""
