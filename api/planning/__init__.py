"""What-if planning for planner keys (issue 13): the live tenant as a baseline, scenario
runs and sweeps as jobs, their reports and exports."""
