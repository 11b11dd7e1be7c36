"""What a run-failure alert says: run, job, partition, failed step, the cause's last line and a UI link."""

from __future__ import annotations

from dataclasses import asdict, dataclass


def last_line(message: str) -> str:
    """The last non-blank line of an error message (where Python puts the exception itself)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class RunFailureAlert:
    """One failed run, as a person on call needs it."""

    run_id: str
    job_name: str
    partition: str | None
    failed_step: str | None
    cause: str
    run_url: str
    # What started the run (the `recsys/trigger` tag: a schedule, a sensor, a retrain trigger's reason).
    trigger: str | None = None

    @property
    def subject(self) -> str:
        """What the alert is about, for delivery errors."""
        return f"run {self.run_id}"

    def text(self) -> str:
        """The message as Slack mrkdwn."""
        partition = f" partition `{self.partition}`" if self.partition else ""
        step = f"step `{self.failed_step}`" if self.failed_step else "the run (no step failed)"
        started = f"started by: {self.trigger}\n" if self.trigger else ""
        return (
            f":rotating_light: `{self.job_name}`{partition} failed in {step}\n"
            f"> {self.cause}\n"
            f"{started}run `{self.run_id}`: <{self.run_url}|open in Dagster>"
        )

    def payload(self) -> dict[str, str | None]:
        """The message as a JSON object for a generic webhook."""
        return {"event": "dagster_run_failure", **asdict(self), "text": self.text()}


@dataclass(frozen=True)
class StaleAssetAlert:
    """An asset that missed its freshness deadline (a Dagster freshness check failed)."""

    asset: str
    check: str
    description: str
    asset_url: str

    @property
    def subject(self) -> str:
        return f"stale {self.asset}"

    def text(self) -> str:
        """The message as Slack mrkdwn."""
        return f":hourglass: `{self.asset}` is stale ({self.check})\n> {self.description}\n<{self.asset_url}|open in Dagster>"

    def payload(self) -> dict[str, str | None]:
        """The message as a JSON object for a generic webhook."""
        return {"event": "dagster_asset_stale", **asdict(self), "text": self.text()}
