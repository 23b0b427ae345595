"""Shared test configuration.

Hypothesis runs without per-example deadlines: solver calls vary in wall time on a shared
2-core machine, and timing targets are checked by ``benchmarks/``, not by tests.

The suite runs in pytest-xdist worker processes (``-n auto`` in pyproject's addopts). Whatever
two tests could share across processes is made per worker or per test: each worker migrates its
own SQLite file (under its own ``tmp_path_factory`` directory) and its own PostgreSQL schema
(tests/api/conftest.py), Redis keys carry a per-test prefix, servers listen on port 0, and
Hypothesis's example database is a directory of files that concurrent writers may share.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Each worker holds a few PostgreSQL connections (its session engine, each test's app, the
# concurrency tests' threads): past this many workers a big machine would exhaust a default
# server's max_connections (100) before it ran out of cores. ``-n N`` overrides it.
MAX_AUTO_WORKERS = 8


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core this process may run on, at most
    :data:`MAX_AUTO_WORKERS` (``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set)."""
    if env := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_AUTO_WORKERS))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that ran nothing fails as a usage error (4), never "no tests ran" (5): under xdist
    the workers collect, and their "file or directory not found" for a mistyped path or test id
    never reaches this process, which would only say that no tests ran and exit 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "ERROR: no test was collected or selected: check the paths, test ids, -k and -m "
                "given (with -n0, pytest names what it did not find)",
                red=True,
            )


def worker_id() -> str:
    """This xdist worker's name (``gw0``, ``gw1``…), or ``main`` without xdist: for names of
    shared resources, so that a leftover one says which worker made it."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(
    "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default")
)


# --- one validator per field and one signature per endpoint, not one per test's app ----------
#
# Almost every API test builds its own app (its own clock, settings and state), and FastAPI
# builds each included route's parameter, body and response validators lazily, per app, on the
# first request that reaches the route's router: a pydantic TypeAdapter per field, 10-50 ms per
# router, so most of a short API test's time (measured: a first GET /v1/tickets on a new app
# 50 ms, the next 2.5 ms). In production the one app pays that once. The adapter is a pure
# function of the field's annotation, metadata, attributes and config, so the suite builds it
# once per distinct field: the key holds those objects themselves (by identity, kept alive in
# the cache, so an id is never reused), which makes a hit an adapter built from the very same
# objects; a field made anew (a model made per app, a new annotation) misses and builds its own.
# Likewise each endpoint's and dependency's signature (``inspect.signature`` with its string
# annotations evaluated), read per app on the same first requests: one per callable object.
# The app and its routes are otherwise built and served exactly as in production. These are
# FastAPI internals (0.165): a FastAPI without them leaves the suite as it is, only slower.
_ADAPTERS: dict[tuple[int | str, ...], tuple[tuple[object, ...], Any]] = {}
_SIGNATURES: dict[int, tuple[object, inspect.Signature]] = {}


# The FastAPI releases whose two functions were read and found to do only that (build the
# field's adapter; read the signature): another release keeps the suite as it is, only slower.
_SHARED_FASTAPI = ("0.165.",)


def _share_fastapi_work() -> None:
    try:
        import fastapi
        from fastapi._compat import v2
        from fastapi.dependencies import utils
    except ImportError:
        return
    if not fastapi.__version__.startswith(_SHARED_FASTAPI):
        return
    build_adapter = getattr(v2.ModelField, "__post_init__", None)
    read_signature = getattr(utils, "get_typed_signature", None)
    if build_adapter is None or read_signature is None or not hasattr(v2, "asdict"):
        return

    def shared_adapter(field: v2.ModelField) -> None:
        parts = v2.asdict(field.field_info)
        attributes = sorted(parts["attributes"].items())
        objects = (
            parts["annotation"],
            *parts["metadata"],
            *(value for _, value in attributes),
            field.config,
        )
        key = (len(parts["metadata"]), *(name for name, _ in attributes), *map(id, objects))
        found = _ADAPTERS.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], objects, strict=True)):
            field._type_adapter = found[1]
            return
        build_adapter(field)
        _ADAPTERS[key] = (objects, field._type_adapter)

    def shared_signature(call: Callable[..., Any]) -> inspect.Signature:
        found = _SIGNATURES.get(id(call))
        if found is not None and found[0] is call:
            return found[1]
        signature = read_signature(call)
        _SIGNATURES[id(call)] = (call, signature)
        return signature

    v2.ModelField.__post_init__ = shared_adapter  # type: ignore[method-assign]
    utils.get_typed_signature = shared_signature


_share_fastapi_work()
