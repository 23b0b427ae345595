"""Capability slots: offer a call time only if every booked call stays coverable.

**The check.** A start is offered only if all calls already booked (any capability) plus the new
one can each be given a *distinct* agent who is qualified, working (on shift, available, not busy)
for the call's whole occupancy (call + buffer), and not needed for a team's reserve. The issue's
formulation is a bipartite matching at every moment; that is necessary but *not sufficient*,
because an agent cannot hand a call over half way: with agents A, B and calls W[0,1) (only A),
X[0,2), Y[1,3) (both), V[2,3) (only A), every moment has a matching, yet X must be B (W holds A),
so Y must be A, and V finds A taken. So the engine keeps a *witness*: one concrete, consistent
assignment of every booked call to an agent (tentative for unbound calls, fixed for bound ones).
A start is open iff the witness can be extended to the new call — directly (a qualified agent is
free for the whole occupancy and their team has reserve to spare) or by moving unbound calls out
of the way along a short augmenting chain (bounded effort: open slots move each blocking call
straight to a free agent; a booking tries exactly that first, then chains two deep). The witness
proves coverability, so an offered slot is never an overbooking, and every offered slot can be
booked; the bounded search may, when nearly full, refuse a start a cleverer rearrangement could
have fitted (conservative, never unsafe). A call occupies its agent until its end plus the
buffer even once it is over: a call in wrap-up keeps the agent who took it (bound, else its last
cover) and is never moved. Rebuilding the index starts from the cover the state
carries (``BookingState.cover``), so a service that stores the cover gets the same one back.

**Speed.** :class:`BookingIndex` holds, per agent, one int8 row over the minutes of the horizon
(``NOT_WORKING`` outside working windows, +1 per call occupying the minute), per team the reserve
slack per minute, and per call its occupancy and witness agent. One placement check is a
``max`` over a (qualified agents × call minutes) slice. Open slots for a whole horizon are
computed without touching the grid: each working window and each occupancy becomes a range of
candidate starts it allows or blocks, summed with ``bincount`` + ``cumsum`` into
(agents × candidates) counts; only starts that are not directly open but could be opened by moving
unbound calls go through the search. The index is built once per state and handed over to the
state a booking derives, so a booking stream never rebuilds it. A service that keeps the
organisation between requests builds its part once (:func:`org_index`: working windows, grid,
team headcounts, who qualifies) and derives each request's index from it
(:func:`index_from`: copy the grid from the request's minute on, place the calls) — the same
index a fresh build gives.

Slots are answered in the customer's time zone, on a grid of ``granularity_minutes`` from local
midnight (so a DST day has 23 or 25 hours of starts), and never name an agent.

The parts, each importing only those above it:

- :mod:`solver.slots.index` — the index (grid, reserve slack, witness, the bounded search) and
  how it follows a state (``index_of``, ``org_index``, ``index_from``, ``hand_over``);
- :mod:`solver.slots.grid` — candidate starts in the customer's time zone;
- :mod:`solver.slots.operations` — what a service asks: ``find_slots``, ``book``, ``witness``,
  ``at_risk``;
- :mod:`solver.slots.validation` — ``validate_calls``, a check of any cover written from the
  rules alone.

Code outside :mod:`solver` imports the names below from this package; the parts are for the
engine itself (:mod:`solver.jit`, :mod:`solver.booking_baseline`).
"""

from solver.slots.grid import grid_starts, zone
from solver.slots.index import BookingIndex, advance, hand_over, index_from, index_of, org_index
from solver.slots.operations import at_risk, book, find_slots, new_call_id, open_slots, witness
from solver.slots.validation import validate_calls

__all__ = [
    "BookingIndex",
    "advance",
    "at_risk",
    "book",
    "find_slots",
    "grid_starts",
    "hand_over",
    "index_from",
    "index_of",
    "new_call_id",
    "open_slots",
    "org_index",
    "validate_calls",
    "witness",
    "zone",
]
