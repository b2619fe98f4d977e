"""Evaluating jobs' `if:` conditions against the facts of a Run."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.core.globs import compile_glob
from conveyor.core.masking import Masker
from conveyor.engine.sources import Sources
from conveyor.spec.pipeline import Job, Pipeline


class ConditionChecker:
    """Evaluates each job's `if:` against the Run's facts; a skip reason or None."""

    def __init__(
        self,
        pipeline: Pipeline,
        sources: Sources,
        environ: Mapping[str, str],
        *,
        event: str,
        base: str | None,
    ) -> None:
        self._pipeline = pipeline
        self._event = event
        self._base = base
        self._sources = sources
        secret_names = set(pipeline.secrets)
        self._env = {k: v for k, v in {**environ, **pipeline.env}.items() if k not in secret_names}
        # Another variable may hold a secret's value, and an error may show it.
        self._masker = Masker(v for name in secret_names if (v := environ.get(name)))
        self._changed: set[str] | None = None
        self._changed_known = False

    def __call__(self, job: Job) -> str | None:
        if job.condition is None:
            return None
        from conveyor.spec.conditions import ConditionFacts, evaluate_condition

        facts = ConditionFacts(
            branch=self._sources.facts.branch or "",
            commit=self._sources.facts.commit or "",
            event=self._event,
            env={**self._env, **job.env, **job.matrix},
            secrets=frozenset(self._pipeline.secrets),
        )
        try:
            holds = evaluate_condition(
                job.condition, facts, self._changed_fn, location=job.condition_location
            )
        except SpecError as exc:
            raise SpecError([self._masked(issue) for issue in exc.issues]) from None
        if holds:
            return None
        return f"condition `{job.condition}` is false"

    def _masked(self, issue: SpecIssue) -> SpecIssue:
        mask = self._masker.mask
        return SpecIssue(issue.location, mask(issue.message), mask(issue.hint or "") or None)

    def _changed_fn(self, pattern: str) -> bool:
        if not self._changed_known:
            self._changed = self._sources.changed_files(self._base)
            self._changed_known = True
        if self._changed is None:
            return True  # outside git nothing can be ruled out
        regex = compile_glob(pattern)
        return any(regex.match(path) for path in self._changed)
