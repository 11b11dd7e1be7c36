"""Run-failure and stale-asset alerts to Slack (dagster-slack, token from the secrets resource) and to a generic JSON webhook."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from recsys_assets.domain.alerts import RunFailureAlert, StaleAssetAlert
from recsys_assets.resources.secrets import SecretStore

# What the notifier delivers: a failed run or a stale asset.
Alert = RunFailureAlert | StaleAssetAlert


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered; names the channel, never a token or webhook URL."""


class AlertNotifier(dg.ConfigurableResource):
    """Sends run-failure alerts to the configured Slack channel and/or JSON webhook."""

    secrets: SecretStore
    slack_channel: str | None = Field(default=None, description="Slack channel (e.g. #recsys-alerts); None: no Slack.")
    slack_token_secret: str = Field(default="slack-bot-token", description="Secret holding the Slack bot token.")
    slack_api_url: str | None = Field(
        default=None, description="Slack Web API base URL; None for https://slack.com/api/ (set for stand-ins)."
    )
    webhook_url_secret: str | None = Field(
        default=None, description="Secret holding a webhook URL that receives the alert as JSON; None: no webhook."
    )
    ui_url: str = Field(default="http://127.0.0.1:3000", description="Base URL of the Dagster UI, for run links.")
    timeout_seconds: float = Field(default=10.0, description="Timeout of each delivery request.")

    def run_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI."""
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def asset_url(self, asset: str) -> str:
        """The asset's page in the Dagster UI."""
        return f"{self.ui_url.rstrip('/')}/assets/{asset}"

    def targets(self) -> list[str]:
        """Where alerts go, for logs: channel names, never URLs."""
        return ([f"slack:{self.slack_channel}"] if self.slack_channel else []) + (
            [f"webhook:{self.webhook_url_secret}"] if self.webhook_url_secret else []
        )

    def send(self, alert: Alert) -> None:
        """Deliver to every configured target; the others are still tried when one fails.

        Raises:
            AlertDeliveryError: At least one target failed; the message names which.
        """
        # Imported on delivery: every run's process loads this module, and most never alert.
        import requests
        from slack_sdk.errors import SlackApiError

        failures = []
        if self.slack_channel:
            try:
                self._send_slack(alert, self.slack_channel)
            except (SlackApiError, requests.RequestException, OSError) as exc:
                failures.append(f"Slack {self.slack_channel}: {type(exc).__name__}")
        if self.webhook_url_secret:
            try:
                self._send_webhook(alert, self.webhook_url_secret)
            except (requests.RequestException, OSError) as exc:
                # The exception text holds the URL, which is a credential: report the type only.
                failures.append(f"webhook {self.webhook_url_secret}: {type(exc).__name__}")
        if failures:
            raise AlertDeliveryError(f"alert for {alert.subject} not delivered to " + "; ".join(failures))

    def _send_slack(self, alert: Alert, channel: str) -> None:
        from dagster_slack import SlackResource

        token = self.secrets.access(self.slack_token_secret).value
        client = SlackResource(token=token).get_client()
        client.timeout = int(self.timeout_seconds)
        if self.slack_api_url:
            client.base_url = self.slack_api_url.rstrip("/") + "/"
        client.chat_postMessage(channel=channel, text=alert.text())

    def _send_webhook(self, alert: Alert, url_secret: str) -> None:
        import requests

        url = self.secrets.access(url_secret).value
        response = requests.post(url, json=alert.payload(), timeout=self.timeout_seconds)
        response.raise_for_status()
