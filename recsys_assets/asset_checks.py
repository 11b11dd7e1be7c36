"""What every asset check shares: its spec on the daily partitions, and a verdict reported as its result.

The checks themselves are declared beside their assets (`extract/checks.py`, `evaluation/checks.py`,
`release/checks.py`): each is a `VerdictCheck`, a spec plus the pure function that turns the numbers
a step holds into a `Verdict`; calling it gives the `AssetCheckResult` the step yields.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, ParamSpec

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from recsys_assets.domain.verdict import Verdict
from recsys_assets.partitions import daily_partitions

Judged = ParamSpec("Judged")


@dataclass(frozen=True)
class VerdictCheck(Generic[Judged]):
    """A check on one daily-partitioned asset, judged by `verdict` from what the step holds in memory."""

    asset: str
    name: str
    description: str
    verdict: Callable[Judged, Verdict]
    # Blocking checks stop the assets downstream when they fail; the others only warn.
    blocking: bool = True

    @property
    def spec(self) -> dg.AssetCheckSpec:
        """Its spec; it carries the daily partitions, so each result lands on its day."""
        return dg.AssetCheckSpec(
            self.name,
            asset=self.asset,
            partitions_def=daily_partitions,
            blocking=self.blocking,
            description=self.description,
        )

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN

    def on(
        self,
        partition_key: str,
        target: TargetMaterialization | None,
        *args: Judged.args,
        **kwargs: Judged.kwargs,
    ) -> dg.AssetCheckEvaluation:
        """The verdict as the result of one day of a range run, attached to that day's materialization `target`.

        An `AssetCheckResult` in a range run carries no partition (Dagster 1.13 sets one only for
        single-partition steps), so the UI would show every day "Skipped": the step yields these instead.
        """
        verdict = self.verdict(*args, **kwargs)
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(self.asset),
            check_name=self.name,
            passed=verdict.passed,
            metadata=verdict.numbers,
            target_materialization_data=target,
            severity=self.severity,
            description=verdict.description,
            blocking=self.blocking,
            partition=partition_key,
        )

    def over_days(self, verdicts: Sequence[tuple[str, Verdict]]) -> dg.AssetCheckResult:
        """One result for a range's per-day `verdicts` (day, verdict): passed if every day passed, naming the failed days.

        Its numbers are those of the first failed day (else the last day), plus the counts of days.
        """
        failed = [(day, verdict) for day, verdict in verdicts if not verdict.passed]
        shown = failed[0][1] if failed else verdicts[-1][1]
        if failed:
            named = ", ".join(day for day, _ in failed[:5]) + (", ..." if len(failed) > 5 else "")
            description = f"{len(failed)} of {len(verdicts)} days fail ({named}); first: {shown.description}"
        else:
            description = f"all {len(verdicts)} days pass; last: {shown.description}"
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=not failed,
            severity=self.severity,
            description=description,
            metadata={**shown.numbers, "days": len(verdicts), "failed_days": len(failed)},
        )

    def selected(self, context: dg.AssetExecutionContext) -> bool:
        return self.spec.key in context.selected_asset_check_keys

    def done(self, context: dg.AssetExecutionContext) -> dg.Output:
        """The check's step output, yielded once after its per-day results (`on`), which yield none."""
        return dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(self.spec.key))

    def __call__(self, *args: Judged.args, **kwargs: Judged.kwargs) -> dg.AssetCheckResult:
        """The verdict on the arguments as this check's result; its numbers become metadata, which the UI plots."""
        verdict = self.verdict(*args, **kwargs)
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=verdict.passed,
            severity=self.severity,
            description=verdict.description,
            metadata=verdict.numbers,
        )
