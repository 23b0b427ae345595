"""Just-in-time binding of booked calls to agents, and repair when an agent drops out.

**Just in time.** Calls that start within a lead time get a named agent: qualified, working and
free in the latest calendars, no overlap with their other calls (buffers included), within team
reserves. Among those: the ticket's owner when they can take it, calls spread fairly over each
agent's day (convex: every extra call the same day costs more) and week, and scarce skills kept
free. Earlier bindings stay unless they are no longer possible (those are re-bound).

The model must not make a *later* call uncoverable: the booking index holds a consistent cover
of every call (solver.slots), so the model takes the due calls plus the not-yet-due calls that
overlap them in time ("boundary" calls, free to move, no preferences), and treats everybody
else's cover as fixed. The current cover is a feasible solution and is the hint, so the model is
never infeasible and the whole book stays coverable whatever it chooses.

The greedy (improve the cover call by call, cheapest free candidate, one owner swap) is fast; CP-SAT
on the exact model, split into independent components (calls that overlap in time or could share an
agent's day) and hinted with the greedy, proves the optimum within the JIT target on a quiet machine
at a clearly lower objective than the greedy's; under heavy load it runs out of its budget and
returns the greedy or better (figures: benchmarks/README.md, Capability booking and Figures behind
design choices). Min-cost flow does not fit: one agent can take several due calls in sequence (a
no-overlap constraint per agent, not a capacity). ``method="greedy"`` remains as the fallback and
the comparison.

**Disruption.** An agent loses a shift, gains calendar busy time or is marked away: only the
calls they held, and calls pushed out by their team's reserve, are re-placed. Unbound calls move
freely (nobody was told); a bound call moves only if its agent can no longer take it, or —
as a last resort, counted — to make room for a call that would otherwise be lost. Calls nobody
can cover are reported at once, so the customer can be offered another time.

The parts, each importing only those above it:

- :mod:`solver.jit.costs` — the objective's weights and per (call, agent) costs;
- :mod:`solver.jit.model` — the exact CP-SAT model of the binding;
- :mod:`solver.jit.bind` — ``assign_due``: the greedy, then the model within the time limit;
- :mod:`solver.jit.disrupt` — ``disrupt``: repair after an agent drops out.

Code outside :mod:`solver` imports the names below from this package.
"""

from solver.jit.bind import DEFAULT_LEAD, JitResult, assign_due
from solver.jit.costs import JitWeights
from solver.jit.disrupt import disrupt

__all__ = ["DEFAULT_LEAD", "JitResult", "JitWeights", "assign_due", "disrupt"]
