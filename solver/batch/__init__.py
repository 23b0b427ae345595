"""Batch optimization of a whole queue: who takes what, then in what order.

    from solver.batch import optimize, BatchParams
    plan = optimize(problem, BatchParams(time_limit_s=10.0, seed=0))

Who takes what is a min-cost flow solved exactly; the order is list-scheduled, then improved by
CP-SAT neighbourhoods. See :mod:`solver.batch.solve` for the pipeline.
"""

from solver.batch.params import BatchParams
from solver.batch.solve import optimize

__all__ = ["BatchParams", "optimize"]
