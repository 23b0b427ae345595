"""Agents: who can work, with which skills, in which team."""
