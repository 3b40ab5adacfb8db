"""The one table ``python -m bench`` writes to ``docs/benchmarks.md``.

Every benchmark module that takes part exposes::

    def table_rows(full: bool) -> list[Row]

which runs the benchmark at its small size (``full=False``: a few tens of seconds) or at
the sizes named in issue 14 (``full=True``) and returns one :class:`Row` per measured path,
each measured beside its bare baseline *in the same run*, so the ratio holds on a noisy
machine.  ``bench/__main__.py`` collects the rows of every module, adds the machine and the
load average, and writes the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    path: str  # what was measured, e.g. "xAPI single POST (2 gunicorn workers, PostgreSQL)"
    figure: float  # the measured figure, in ``unit``
    unit: str  # "req/s", "st/s", "ms p95", "s", "x raw"...
    baseline: float | None  # the bare baseline's figure, same unit, same run (None: no baseline)
    baseline_label: str  # what the baseline is, e.g. "bare Flask route, same query"
    target: str  # the target as text, e.g. ">= 400 req/s" or "<= 1.5x baseline"
    met: bool  # whether the target holds for this run
    size: str = ""  # the data size of this run, e.g. "100k resources"
    note: str = ""  # where the remaining time goes when not met (profile reference)

    @property
    def ratio(self) -> float | None:
        """figure / baseline (how many baselines this path costs or achieves)."""
        if not self.baseline:
            return None
        return self.figure / self.baseline
