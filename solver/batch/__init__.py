"""Batch optimization of a whole queue: who takes what, then in what order."""
