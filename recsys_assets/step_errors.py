"""What a failing step leaves behind: no secret in its error, and a retry only where one can help.

`@guarded_step`, under `@dg.asset`, is the boundary between an asset's body and Dagster. Every
exception leaving the body is scrubbed of secrets (`domain.redaction`) before Dagster serialises it
into the event log, the run index and the compute log, and classified once (`domain.failures`):

- permanent (permission, read-only or full disk, 4xx, unknown URI scheme, validation): a
  `dg.Failure(allow_retries=False)` whose description is one line naming the cause, so the step
  fails at once instead of after three retries;
- transient or unknown: re-raised as it is, and the asset's retry policy decides (`SERVICE_RETRY_POLICY`).

A `dg.Failure` the body raises on purpose (a verdict, a blocked release) passes through scrubbed.

A blocking check that fails ends the step with a `dg.Failure` whose description is the check's
verdict sentence and whose metadata are its numbers: the run's page then opens on "beats_baselines:
challenger ndcg@10 … < required …" instead of Dagster's "1 blocking asset check failed with ERROR
severity", which names the check but not why.

An interrupt (SIGTERM, Ctrl-C: Dagster raises it inside the step) ends the step for good: Dagster's
retry policy would otherwise retry an interrupted step, so a CLI run told to stop started it again.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from recsys_assets.domain.failures import classify, one_line
from recsys_assets.domain.redaction import scrub, scrub_exception

F = TypeVar("F", bound=Callable[..., Any])

# The metadata key that marks a step failure as the failed blocking checks' verdicts (the CLI prints the checks instead).
FAILED_CHECKS = "failed_checks"
# A range run can fail a check on many days: the failure names the first few, the check results hold all.
FAILED_CHECKS_NAMED = 5

INTERRUPTS = (KeyboardInterrupt, dg.DagsterExecutionInterruptedError)


def _interrupted() -> dg.Failure:
    return dg.Failure(
        description="interrupted (SIGTERM or Ctrl-C): the step stopped and is not retried", allow_retries=False
    )


# Marks a guarded compute function, so a test can check every asset has the guard.
GUARDED = "__recsys_guarded_step__"


def _translated(exc: Exception) -> BaseException:
    """The exception Dagster should see for `exc`: scrubbed, and a non-retried Failure when permanent."""
    if isinstance(exc, dg.Failure | dg.RetryRequested):
        return scrub_exception(exc)
    verdict = classify(exc)
    cleaned = scrub_exception(exc)
    if verdict != "permanent":
        return cleaned
    failure = dg.Failure(description=scrub(one_line(cleaned)), allow_retries=False)
    failure.__cause__ = cleaned
    return failure


def _failed_blocking(event: Any) -> tuple[str, str, dict[str, Any]] | None:
    """(check, verdict sentence, numbers) of a failed blocking check result, else None."""
    if isinstance(event, dg.AssetCheckEvaluation):
        failed = not event.passed and event.blocking and event.severity == dg.AssetCheckSeverity.ERROR
    elif isinstance(event, dg.AssetCheckResult):  # blocking checks report ERROR severity (asset_checks.py)
        failed = not event.passed and event.severity == dg.AssetCheckSeverity.ERROR
    else:
        return None
    if not failed:
        return None
    return event.check_name or "check", event.description or "failed", dict(event.metadata)


def verdict_failure(failed: list[tuple[str, str, dict[str, Any]]]) -> dg.Failure:
    """The step failure for failed blocking checks: their sentences, and the first one's numbers."""
    lines = [f"{name}: {sentence}" for name, sentence, _ in failed[:FAILED_CHECKS_NAMED]]
    if len(failed) > FAILED_CHECKS_NAMED:
        lines.append(f"and {len(failed) - FAILED_CHECKS_NAMED} more failed results (see the checks)")
    numbers = failed[0][2]
    return dg.Failure(
        description="blocking check failed: " + "; ".join(lines),
        metadata={FAILED_CHECKS: dg.MetadataValue.json(sorted({n for n, _, _ in failed})), **numbers},
        allow_retries=False,
    )


def guarded_step(fn: F) -> F:
    """Decorate an asset's compute function (plain or generator): scrubbed, classified errors."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            failed: list[tuple[str, str, dict[str, Any]]] = []
            try:
                for event in fn(*args, **kwargs):
                    if (verdict := _failed_blocking(event)) is not None:
                        failed.append(verdict)
                    yield event
            except INTERRUPTS:
                error = _interrupted()
            except Exception as exc:
                error = _translated(exc)
            else:
                if not failed:
                    return None
                error = verdict_failure(failed)
            # Raised outside the handler, so the unscrubbed original is not attached as its context.
            raise error

        setattr(generator, GUARDED, True)
        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except INTERRUPTS:
            error = _interrupted()
        except Exception as exc:
            error = _translated(exc)
        raise error

    setattr(function, GUARDED, True)
    return function  # type: ignore[return-value]
