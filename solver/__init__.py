"""Switchboard's optimization core: plain data in, plain data out; no I/O.

Imports no other package of ours and reads nothing from the environment, so the API, the
scenario simulator and the benchmarks all drive exactly the same code.
"""
