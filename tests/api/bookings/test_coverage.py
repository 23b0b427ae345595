"""What "a capability covers a ticket" means (api.bookings.service.missing_skills), for every
input: nothing is missing exactly when every agent the capability may send is qualified for the
ticket, and what is missing is named with both levels."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.bookings.service import missing_skills

SKILLS = st.sampled_from(["net", "billing", "lang:de", "tier:2"])
LEVELS = st.dictionaries(SKILLS, st.integers(1, 5), max_size=4)


def qualifies(agent: dict[str, int], needs: dict[str, int]) -> bool:
    return all(agent.get(s, 0) >= lvl for s, lvl in needs.items())


@given(ticket=LEVELS, capability=LEVELS, agent=LEVELS)
def test_covered_means_every_agent_of_the_capability_qualifies(
    ticket: dict[str, int], capability: dict[str, int], agent: dict[str, int]
) -> None:
    missing = missing_skills(ticket, capability)
    if not missing and qualifies(agent, capability):
        assert qualifies(agent, ticket)
    # Missing: the capability's least agent (exactly its requirements) is not qualified.
    assert (not missing) == qualifies(capability, ticket)
    for skill, (need, has) in missing.items():
        assert ticket[skill] == need and capability.get(skill) == has
        assert has is None or has < need
    assert set(missing) == {s for s, lvl in ticket.items() if capability.get(s, 0) < lvl}


def test_examples() -> None:
    assert missing_skills({"net": 2}, {"net": 2, "billing": 1}) == {}
    assert missing_skills({"net": 3, "billing": 1}, {"net": 2}) == {
        "billing": (1, None),
        "net": (3, 2),
    }
