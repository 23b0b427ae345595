"""The organisation: skills, teams, agents, their shifts and busy time, capabilities, and its
version.
"""
