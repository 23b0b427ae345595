"""Schemas of what-if planning (``/v1/planning``): submitting runs and sweeps, reading them."""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from api.common.schemas import Int, Schema, Timestamp, TimestampIn
from api.db.jobs import JobStatus

MAX_SCENARIO_CHARS = 200_000
# What YAML 1.1 accepts in a stream (PyYAML's reader): tab, line ends, printable ASCII, NEL and
# the printable planes.
_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ScenarioFormat(enum.StrEnum):
    YAML = "yaml"
    TOML = "toml"


class RunIn(Schema):
    scenario: str = Field(
        min_length=1,
        max_length=MAX_SCENARIO_CHARS,
        description=(
            "The scenario file's text (for /sweeps, the sweep file's), YAML or TOML as "
            "`format` says. Its `baseline:` / `scenario:` file references are ignored: the "
            "baseline is the request's `baseline`. A bad file is a 422 naming the line and field"
        ),
    )
    format: ScenarioFormat = Field(default=ScenarioFormat.YAML, description="yaml or toml")
    baseline: Literal["live"] | dict[str, Any] = Field(
        default="live",
        description=(
            "`live`: the tenant now, as GET /v1/planning/baseline exports it (with "
            "`baseline_days` and `tickets_since`), frozen at submission; or an inline baseline "
            "(the same document, e.g. an edited export)"
        ),
    )
    baseline_days: Int = Field(
        default=14, ge=1, le=31, description="For a live baseline: the days of the window"
    )
    tickets_since: TimestampIn | None = Field(
        default=None,
        description="For a live baseline: the window's start (default: now - baseline_days)",
    )

    @field_validator("scenario")
    @classmethod
    def _printable(cls, value: str) -> str:
        # YAML refuses control characters (and lone surrogates) before it can name a line.
        for n, char in enumerate(value):
            if not _PRINTABLE.match(char):
                line = value.count("\n", 0, n) + 1
                raise ValueError(f"line {line}: character U+{ord(char):04X} is not allowed")
        return value


class KpiEstimate(Schema):
    mean: float | None
    ci_low: float | None = Field(description="95 % confidence interval across replications")
    ci_high: float | None
    n: int


class KpiDelta(Schema):
    baseline_mean: float | None
    scenario_mean: float | None
    delta_mean: float | None = Field(description="scenario - baseline, paired by replication")
    delta_ci_low: float | None
    delta_ci_high: float | None
    n: int


class WorldSummary(Schema):
    replications: int
    note: str
    kpis: dict[str, KpiEstimate]


class RunSummary(Schema):
    baseline: str = Field(description="The key of the baseline among `worlds`")
    worlds: dict[str, WorldSummary] = Field(description="Every simulated world, by name")
    deltas: dict[str, dict[str, KpiDelta]] = Field(
        description="Each scenario's KPIs against the baseline's (same seeds: paired deltas)"
    )


class RunLinks(Schema):
    self: str
    job: str
    report: str | None = Field(description="The HTML report, once the run succeeded")
    exports: dict[str, str] = Field(description="CSV and Excel exports, once the run succeeded")


class RunOut(Schema):
    id: str
    kind: Literal["run", "sweep"]
    name: str
    status: JobStatus = Field(
        description="queued, running, succeeded, failed or cancelled (its job's, while it lives)"
    )
    progress: float | None = Field(description="0..1 while running (simulated share done)")
    error: str | None
    created_at: Timestamp
    finished_at: Timestamp | None
    summary: RunSummary | None = Field(description="KPIs with CIs and deltas, once succeeded")
    links: RunLinks


class RunList(Schema):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older runs; null at the end")
