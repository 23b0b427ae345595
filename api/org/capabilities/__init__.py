"""Capabilities: what a customer books a call against (skills and levels), never a person."""
