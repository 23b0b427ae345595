"""``benchmarks.http_profile``'s attribution of py-spy's raw stacks to parts of the HTTP layer."""

from __future__ import annotations

from benchmarks.http_profile import attribute

RAW = "\n".join(
    (
        # The leaf is the standard library: the sample counts for the part that called it.
        "run (uvicorn/server.py:1);__call__ (/x/api/http/gate.py:90);loads (json/__init__.py:3) 5",
        "run (uvicorn/server.py:1);__call__ (/x/api/http/gate.py:90);"
        "__call__ (/x/api/http/ratelimit.py:250);step (pyrate_limiter/abstracts/algorithm.py:7) 3",
        "run (uvicorn/server.py:1);__call__ (/x/api/http/metrics.py:155);"
        "app (fastapi/routing.py:300);assign (/x/solver/realtime.py:10) 4",
        "run (uvicorn/server.py:1);app (fastapi/routing.py:300);"
        "execute (sqlalchemy/engine/base.py:1) 2",
        "run (uvicorn/server.py:1);data_received (uvicorn/protocols/http/httptools_impl.py:9) 1",
        "main (<string>:1) 1",
        "not a sample line",
    )
)


def test_each_sample_goes_to_its_innermost_known_part() -> None:
    parts, frames = attribute(RAW)
    assert parts == {
        "gate": 5,
        "rate limiter": 3,
        "route + services": 4,
        "database": 2,
        "server": 1,
        "other": 1,
    }
    assert frames["gate"] == {"__call__ (http/gate.py)": 5}
    assert frames["rate limiter"] == {"step (abstracts/algorithm.py)": 3}
    assert frames["route + services"] == {"assign (solver/realtime.py)": 4}
