"""Stateless solving: a whole problem in the request, a plan in the answer; nothing stored."""
