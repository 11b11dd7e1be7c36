"""Every setting, read from the environment in one place: the only module that reads `os.environ`.

Everything that changes between the embedded default and a cloud deployment is a `RECSYS_*`
variable, a field of `Settings` below, so switching backends never means editing code. Each value
is validated here, when the settings are read: a bad one is a `ConfigurationError` whose one-line
message names the variable (the CLI prints it as `configuration error: ...`), an empty value means
the default, and a `RECSYS_*` name that is no setting is refused (a misspelt selector would
otherwise quietly select the embedded default).

The process's own settings are read once, on first use (`process_settings()`, or `SETTINGS`);
`Settings.from_env(mapping)` reads any other environment (tests, scripts). Backend-specific groups
that mirror a resource's own fields (`RECSYS_VERTEX_<FIELD>`) are read by `group()`, which checks
their names against that resource's fields.

Written by hand rather than with pydantic-settings: its sources read `os.environ` only (the suite
and the scripts pass environments as mappings), and the definitions must keep the variable *names*
of values that came from the process (`dg.EnvVar`), which a settings class resolves away.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.names import safe_name

M = TypeVar("M", bound=BaseModel)

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "RECSYS_"
# Without data or a setting, partitions cover this many days back from today (a rolling horizon).
DEFAULT_HORIZON_DAYS = 90
# Written by `seed` and `import-events` in the data folder: the first day the warehouse holds.
FIRST_DAY_FILE = "first_day"
# The events table of the embedded DuckDB warehouse (BigQuery's is `RECSYS_BQ_TABLE`).
DUCKDB_EVENTS_TABLE = "events"
# A century of daily partitions: more than any history, and far from what date arithmetic overflows on.
MAX_WINDOW_DAYS = 36_500
# Runs kept per asset and day by the retention policy: more would be keeping everything.
MAX_KEPT_RUNS = 1000

# `RECSYS_*` names that are not fields of `Settings`, and who reads them.
VERTEX_PREFIX = "RECSYS_VERTEX_"  # one per `VertexTrainingLauncher` field, read through `group()`
SECRET_PREFIX = "RECSYS_SECRET_"  # local secret values (`LocalSecretStore`); never part of the settings
NOT_SETTINGS = {
    # Set by the launchers for the training process they start (recsys_assets.pipes.worker).
    "RECSYS_ORCHESTRATOR_PID": "the orchestrator a local training process dies with (set by the launcher)",
    "RECSYS_PIPES_STORE": "the Pipes message store of a training process (set by the launcher)",
    # Read by the deployment files, never by Python.
    "RECSYS_CODE_SERVER_HOST": "where the webserver and daemon find the code server (deploy/workspace.yaml)",
    "RECSYS_CODE_SERVER_PORT": "the code server's port (deploy/workspace.yaml)",
    "RECSYS_PLATFORM_IMAGE": "the platform image compose runs, pinned by digest (deploy/docker-compose.yml)",
    # Read by the deployment tests.
    "RECSYS_UPDATE_SNAPSHOTS": "`1`: the deployment tests rewrite their snapshots (recsys_assets_tests/deploy)",
}

_SECRET_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}(@(latest|[0-9]+))?")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_CODE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+@:/-]{0,127}")
_ARTIFACT_SCHEMES = ("file", "s3", "gs")


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _setting(env: str, description: str, default: Any = None, *, shown: str | None = None, **constraints: Any) -> Any:
    """A field read from `env`; `shown` is the default as the README's table states it when it is derived."""
    extra: dict[str, Any] | None = {"shown_default": shown} if shown else None
    return Field(default, alias=env, description=description, json_schema_extra=extra, **constraints)


def _iso_date(value: Any) -> Any:
    # Strictly a calendar date: pydantic alone would take `20261120` for a Unix timestamp (1970-08-23).
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("is not a date (YYYY-MM-DD)") from None
    return value


def _whole_days(value: Any) -> Any:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a whole number of days, >= 1")
    if int(text) > MAX_WINDOW_DAYS:
        raise ValueError(f"must be at most {MAX_WINDOW_DAYS} days (a century)")
    return int(text)


def _run_count(value: Any) -> Any:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_KEPT_RUNS:
        raise ValueError(f"must be a whole number of runs, 1 to {MAX_KEPT_RUNS}")
    return int(text)


Choice = BeforeValidator(_lower)
RunCount = Annotated[int, BeforeValidator(_run_count)]
WholeDays = Annotated[int, BeforeValidator(_whole_days)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Environment = Annotated[Literal["local", "production"], Choice]
Automation = Annotated[Literal["running", "stopped"], Choice]
WarehouseBackend = Annotated[Literal["duckdb", "bigquery"], Choice]
SecretsBackend = Annotated[Literal["local", "gcp"], Choice]
ModelStoreBackend = Annotated[Literal["local", "s3"], Choice]
ReleaseBackend = Annotated[Literal["local", "github"], Choice]
LauncherBackend = Annotated[Literal["subprocess", "docker", "vertex"], Choice]


class Settings(BaseModel):
    """Every `RECSYS_*` setting, validated; derived defaults are the properties below the fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    # The graph itself.
    environment: Environment = _setting(
        "RECSYS_ENVIRONMENT", "`production` (both deployments set it) requires `RECSYS_PARTITIONS_START`", "local"
    )
    data_dir: Path = _setting(
        "RECSYS_DATA_DIR",
        "folder of the embedded warehouse, artefacts and model store",
        REPO_ROOT / "data",
        shown="./data",
    )
    partitions_start: IsoDate | None = _setting(
        "RECSYS_PARTITIONS_START",
        "first daily partition, YYYY-MM-DD; unset: the first day seeded or imported, else 90 days ago (locally)",
        shown="the data's first day",
    )
    training_window_days: WholeDays = _setting(
        "RECSYS_TRAINING_WINDOW_DAYS", "days of events a model is trained on", 28
    )
    model_name: str = _setting(
        "RECSYS_MODEL_NAME",
        "the product's name in the store and the registry, whatever family is selected (each version's "
        "manifest and model card name its family)",
        "jobs-als",
    )
    code_version: str | None = _setting(
        "RECSYS_CODE_VERSION", "the code's commit, set by the image build", shown="`git rev-parse HEAD`"
    )
    automation: Automation = _setting(
        "RECSYS_AUTOMATION", "`running`: schedules and sensors start running (production)", "stopped"
    )
    retrain_cron: str = _setting("RECSYS_RETRAIN_CRON", "when the retrain schedule runs", "0 4 * * 1")
    retrain_timezone: str = _setting("RECSYS_RETRAIN_TIMEZONE", "the retrain cron's IANA time zone", "UTC")
    retrain_max_decay: float = _setting(
        "RECSYS_RETRAIN_MAX_DECAY",
        "retrain when the champion's 7-day mean hit rate falls this share below its first 7 days",
        0.10,
        ge=0,
        le=1,
    )
    drift_max_unseen_items: float = _setting(
        "RECSYS_DRIFT_MAX_UNSEEN_ITEMS",
        "retrain when this share of a day's interactions goes to items the champion never saw",
        0.40,
        ge=0,
        le=1,
    )
    drift_max_unknown_users: float = _setting(
        "RECSYS_DRIFT_MAX_UNKNOWN_USERS",
        "retrain when this share of the active users is unknown to the champion",
        0.10,
        ge=0,
        le=1,
    )
    retention_runs: RunCount = _setting(
        "RECSYS_RETENTION_RUNS", "`gc` keeps the artefacts of this many latest runs per asset and day", 3
    )
    retention_days: WholeDays = _setting(
        "RECSYS_RETENTION_DAYS",
        "`gc` removes the files of rejected, superseded and never-proposed bundles unchanged this many days",
        30,
    )

    # Backend selectors: each field is named after the resource it selects (see resources.BACKENDS).
    warehouse: WarehouseBackend = _setting("RECSYS_WAREHOUSE", "events and catalogue: `duckdb` or `bigquery`", "duckdb")
    secrets: SecretsBackend = _setting("RECSYS_SECRETS", "credentials: `local` or `gcp` (Secret Manager)", "local")
    model_store: ModelStoreBackend = _setting("RECSYS_MODEL_STORE", "model bundles: `local` or `s3`", "local")
    release_publisher: ReleaseBackend = _setting(
        "RECSYS_RELEASE", "release proposals: `local` or `github` (pull requests)", "local"
    )
    training_launcher: LauncherBackend = _setting(
        "RECSYS_TRAINING_LAUNCHER", "where training runs: `subprocess`, `docker` or `vertex`", "subprocess"
    )
    mlflow_tracking_uri: str | None = _setting(
        "RECSYS_MLFLOW_TRACKING_URI", "MLflow tracking server or database; unset: no tracking"
    )

    # Embedded backends.
    artifacts_uri: str | None = _setting(
        "RECSYS_ARTIFACTS_URI",
        "intermediate artefacts: a folder, `s3://` or `gs://`",
        shown="RECSYS_DATA_DIR/artifacts",
    )
    duckdb_path: Path | None = _setting(
        "RECSYS_DUCKDB_PATH", "the DuckDB warehouse file", shown="RECSYS_DATA_DIR/warehouse.duckdb"
    )
    duckdb_lock_timeout_seconds: float = _setting(
        "RECSYS_DUCKDB_LOCK_TIMEOUT_SECONDS", "how long a DuckDB writer waits for another's lock", 30.0, ge=0
    )
    duckdb_pairs_memory_mib: int = _setting(
        "RECSYS_DUCKDB_PAIRS_MEMORY_MIB",
        "working memory of the DuckDB process that builds the training set's pairs (it spills beyond)",
        4096,
        ge=64,
    )
    items_table: str = _setting("RECSYS_ITEMS_TABLE", "the catalogue table, beside the events", "items")
    recommendations_table: str = _setting(
        "RECSYS_RECOMMENDATIONS_TABLE",
        "the served lists' table, beside the events (day-partitioned)",
        "recommendations",
    )
    model_store_dir: Path | None = _setting(
        "RECSYS_MODEL_STORE_DIR", "the local model store", shown="RECSYS_DATA_DIR/model_store"
    )
    release_dir: Path | None = _setting(
        "RECSYS_RELEASE_DIR",
        "where local release proposals and the serving pointer live",
        shown="RECSYS_DATA_DIR/model_store",
    )
    secrets_dir: Path | None = _setting(
        "RECSYS_SECRETS_DIR", "local secrets: one file per secret (besides `RECSYS_SECRET_<NAME>`)"
    )

    # BigQuery (RECSYS_WAREHOUSE=bigquery).
    bq_project: str | None = _setting("RECSYS_BQ_PROJECT", "BigQuery project (required)")
    bq_dataset: str | None = _setting("RECSYS_BQ_DATASET", "BigQuery dataset (required)")
    bq_table: str = _setting("RECSYS_BQ_TABLE", "BigQuery events table", "events")
    bq_location: str | None = _setting("RECSYS_BQ_LOCATION", "BigQuery location, e.g. EU")
    bq_use_storage_api: bool = _setting(
        "RECSYS_BQ_USE_STORAGE_API", "read results through the Storage Read API (`true`/`false`)", True
    )
    bq_endpoint: str | None = _setting("RECSYS_BQ_ENDPOINT", "an emulator's `http://host:port` (no credentials sent)")
    bq_storage_endpoint: str | None = _setting(
        "RECSYS_BQ_STORAGE_ENDPOINT", "an emulator's plaintext Storage gRPC host:port"
    )

    # GCP Secret Manager (RECSYS_SECRETS=gcp).
    gcp_project: str | None = _setting("RECSYS_GCP_PROJECT", "Secret Manager's project (required)")
    secrets_endpoint: str | None = _setting("RECSYS_SECRETS_ENDPOINT", "a plaintext Secret Manager stand-in (tests)")

    # S3 (RECSYS_MODEL_STORE=s3).
    s3_bucket: str | None = _setting("RECSYS_S3_BUCKET", "the model store's bucket (required)")
    s3_prefix: str = _setting("RECSYS_S3_PREFIX", "key prefix inside the bucket", "")
    s3_region: str | None = _setting("RECSYS_S3_REGION", "the bucket's AWS region")
    s3_endpoint_url: str | None = _setting("RECSYS_S3_ENDPOINT_URL", "an S3-compatible store's endpoint")
    s3_access_key_secret: str | None = _setting(
        "RECSYS_S3_ACCESS_KEY_SECRET",
        "secret (`name` or `name@version`) holding the access key id; `none`: AWS's default credential chain",
        "aws-access-key-id",
    )
    s3_secret_key_secret: str | None = _setting(
        "RECSYS_S3_SECRET_KEY_SECRET",
        "secret holding the secret access key; `none`: AWS's default credential chain",
        "aws-secret-access-key",
    )

    # GitHub (RECSYS_RELEASE=github).
    github_repository: str | None = _setting(
        "RECSYS_GITHUB_REPOSITORY", "`owner/name` of the release repository (required)"
    )
    github_base_branch: str = _setting("RECSYS_GITHUB_BASE_BRANCH", "the branch release pull requests target", "main")
    github_base_url: str = _setting(
        "RECSYS_GITHUB_BASE_URL", "GitHub's API (Enterprise: `https://<host>/api/v3`)", "https://api.github.com"
    )
    github_token_secret: str = _setting("RECSYS_GITHUB_TOKEN_SECRET", "secret holding the GitHub token", "github-token")

    # Docker and Vertex AI training (RECSYS_TRAINING_LAUNCHER=docker|vertex).
    image: str | None = _setting(
        "RECSYS_IMAGE", "the project image to train on, pinned by commit tag or digest (required by `docker`, `vertex`)"
    )
    docker_network: str | None = _setting("RECSYS_DOCKER_NETWORK", "a Docker network for the training container")

    # Alerts.
    alert_slack_channel: str | None = _setting("RECSYS_ALERT_SLACK_CHANNEL", "Slack channel for run-failure alerts")
    alert_slack_token_secret: str = _setting(
        "RECSYS_ALERT_SLACK_TOKEN_SECRET", "secret holding the Slack bot token", "slack-bot-token"
    )
    slack_api_url: str | None = _setting("RECSYS_SLACK_API_URL", "a Slack API stand-in (tests)")
    alert_webhook_secret: str | None = _setting(
        "RECSYS_ALERT_WEBHOOK_SECRET", "secret holding a JSON webhook's URL for run-failure alerts"
    )
    ui_url: str = _setting("RECSYS_UI_URL", "the Dagster UI, for links in alerts", "http://127.0.0.1:3000")

    # Which variables came from this process's environment (their definitions keep the name, not the value).
    _from_process: frozenset[str] = PrivateAttr(default=frozenset())
    # The `RECSYS_VERTEX_*` group, checked by the launcher that reads it.
    _groups: Mapping[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("data_dir", "duckdb_path", "model_store_dir", "release_dir", "secrets_dir")
    @classmethod
    def _folder_or_file(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("data_dir")
    @classmethod
    def _a_folder(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError("exists and is not a folder")
        return value

    @field_validator("partitions_start")
    @classmethod
    def _not_in_the_future(cls, value: date | None) -> date | None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("is in the future: no day would be a partition yet")
        return value

    @field_validator("model_name", "items_table", "recommendations_table", "bq_table")
    @classmethod
    def _safe(cls, value: str) -> str:
        # The message names the value; `_check` adds the variable.
        try:
            return safe_name(value, "it")
        except ConfigurationError:
            raise ValueError("is not a safe name: letters, digits, '_', '-' and '.', no '/' or '..'") from None

    @field_validator("s3_access_key_secret", "s3_secret_key_secret", mode="before")
    @classmethod
    def _none_is_no_secret(cls, value: Any) -> Any:
        # `none`: no secret at all (the AWS default credential chain); empty still means the default.
        return None if isinstance(value, str) and value.lower() == "none" else value

    @field_validator(
        "s3_access_key_secret",
        "s3_secret_key_secret",
        "github_token_secret",
        "alert_slack_token_secret",
        "alert_webhook_secret",
    )
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.fullmatch(value):
            raise ValueError("is not a secret name, `name` or `name@version` (latest or a number)")
        return value

    @field_validator("code_version")
    @classmethod
    def _code_version(cls, value: str | None) -> str | None:
        # It reaches the model card and the release pull request: a commit, tag or build id, nothing else.
        if value is not None and not _CODE_VERSION.fullmatch(value):
            raise ValueError("is not a commit, tag or build id (letters, digits and . _ + @ : / -)")
        return value

    @field_validator("retrain_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("duckdb_lock_timeout_seconds")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @field_validator("github_repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not _REPOSITORY.fullmatch(value):
            raise ValueError("must be owner/name")
        return value

    # GitHub's base URL is checked by its publisher (https only, but for a local stand-in).
    @field_validator("ui_url", "slack_api_url", "bq_endpoint", "s3_endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("is not an http(s):// URL")
        return value

    @field_validator("artifacts_uri")
    @classmethod
    def _artifacts(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and value.split("://", 1)[0].lower() not in _ARTIFACT_SCHEMES:
            raise ValueError("has an unknown scheme: use a folder, s3://bucket/prefix or gs://bucket/prefix")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.environment == "production" and self.partitions_start is None:
            raise ValueError(
                "RECSYS_ENVIRONMENT=production needs RECSYS_PARTITIONS_START (YYYY-MM-DD): every process "
                "must see the same partitions, not 90 days back from the day it started"
            )
        if self.items_table.lower() in (self.events_table.lower(), f"{self.events_table}_partitions".lower()):
            raise ValueError(
                f"RECSYS_ITEMS_TABLE={self.items_table!r} is the events table of the warehouse: "
                "the catalogue needs a table of its own"
            )
        return self

    # Derived values: one place says what an unset setting falls back to.
    @property
    def events_table(self) -> str:
        return self.bq_table if self.warehouse == "bigquery" else DUCKDB_EVENTS_TABLE

    @property
    def warehouse_path(self) -> Path:
        return self.duckdb_path or self.data_dir / "warehouse.duckdb"

    @property
    def artifacts_root(self) -> str:
        return self.artifacts_uri or str(self.data_dir / "artifacts")

    @property
    def model_store_root(self) -> Path:
        return self.model_store_dir or self.data_dir / "model_store"

    @property
    def release_root(self) -> Path:
        return self.release_dir or self.data_dir / "model_store"

    @property
    def item_catalogue(self) -> str:
        """The catalogue's backend: the warehouse's (the postings live beside the events)."""
        return self.warehouse

    @property
    def recommendation_store(self) -> str:
        """The served lists' backend: the warehouse's (the lists live beside the events)."""
        return self.warehouse

    @property
    def tracker(self) -> str:
        """The experiment tracker's backend: MLflow once a tracking URI is set."""
        return "mlflow" if self.mlflow_tracking_uri else "none"

    @functools.cached_property
    def first_partition(self) -> str:
        """Where daily partitions begin (YYYY-MM-DD): the setting, else the data's first day, else 90 days ago.

        Partitions then begin where the data does, so the UI's fill bars and partition picker show
        the data instead of decades of empty days.
        """
        if self.partitions_start:
            return self.partitions_start.isoformat()
        try:
            return date.fromisoformat((self.data_dir / FIRST_DAY_FILE).read_text().strip()).isoformat()
        except (OSError, ValueError):
            return (datetime.now(UTC).date() - timedelta(days=DEFAULT_HORIZON_DAYS)).isoformat()

    def env_name(self, field: str) -> str:
        """The variable a field is read from, e.g. `RECSYS_BQ_PROJECT` for `bq_project`."""
        return _env_name(type(self).model_fields[field], field)

    def from_process(self, field: str) -> bool:
        """Whether the field's value came from this process's environment (not from a mapping or a default)."""
        return self.env_name(field) in self._from_process

    def required(self, field: str, selector: str) -> Any:
        """The field's value, or a ConfigurationError saying which selector needs it."""
        value = getattr(self, field)
        if value in (None, ""):
            raise ConfigurationError(f"{selector} needs {self.env_name(field)}")
        return value

    def group(self, prefix: str, fields: Mapping[str, FieldInfo], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """The `prefix<FIELD>` variables as keyword arguments for a model with `fields` (e.g. a resource).

        An unknown name is refused (a misspelt one would otherwise be ignored); mappings and lists are
        JSON. The model's own validation is the caller's: `configured()` names the variable on failure.
        """
        known = {prefix + name.upper(): name for name in fields if name not in exclude}
        unknown = sorted(name for name in self._groups if name.startswith(prefix) and name not in known)
        if unknown:
            hints = "; ".join(_did_you_mean(name, list(known)) for name in unknown)
            raise ConfigurationError(f"unknown settings: {hints}; known: {', '.join(known)}")
        values: dict[str, Any] = {}
        for env, name in known.items():
            raw = self._groups.get(env)
            if raw is None:
                continue
            if get_origin(fields[name].annotation) in (dict, list):
                try:
                    values[name] = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigurationError(f"{env} is not JSON ({exc.msg} at character {exc.pos})") from None
            else:
                values[name] = raw
        return values

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in `env` (default: this process's environment), validated.

        Raises:
            ConfigurationError: One line naming every variable whose value is unusable.
        """
        process = os.environ
        env = process if env is None else env
        given = {name: value.strip() for name, value in env.items() if name.startswith(PREFIX)}
        given = {name: value for name, value in given.items() if value}  # empty means the default
        fields = {_env_name(info, name): name for name, info in cls.model_fields.items()}
        grouped = {name: value for name, value in given.items() if name.startswith(VERTEX_PREFIX)}
        unknown = sorted(
            name
            for name in given
            if name not in fields
            and name not in grouped
            and name not in NOT_SETTINGS
            and not name.startswith(SECRET_PREFIX)
        )
        if unknown:
            hints = [_did_you_mean(name, [*fields, *NOT_SETTINGS]) for name in unknown]
            raise ConfigurationError("unknown settings: " + "; ".join(hints))
        settings = configured(cls, {name: value for name, value in given.items() if name in fields})
        # Dagster resolves an EnvVar to the raw value: only a value that needed no stripping stays one.
        settings._from_process = frozenset(name for name, value in given.items() if process.get(name) == value)
        settings._groups = grouped
        return settings


def _env_name(info: FieldInfo, name: str) -> str:
    return info.alias or PREFIX + name.upper()


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"{name} (did you mean {close[0]}?)" if close else name


def configured(
    model: type[M], values: Mapping[str, Any], *, names: Mapping[str, str] | None = None, selector: str | None = None
) -> M:
    """`model(**values)`, its validation errors turned into one line naming each variable.

    `names` maps a field to the variable it came from (default: the field's alias, or `RECSYS_<FIELD>`);
    a missing required field reads "`selector` needs <variable>".
    """
    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            info = model.model_fields.get(field) or next(
                (f for f in model.model_fields.values() if f.alias == field), None
            )
            variable = (names or {}).get(field) or (_env_name(info, field) if info else field)
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "literal_error":
                expected = str((error.get("ctx") or {}).get("expected", ""))
                message = "is not one of " + expected.replace("'", "").replace(" or ", ", ")
            if not error["loc"]:  # a rule across settings: its message names them
                problems.append(message)
            elif error["type"] == "missing":
                problems.append(f"{selector or 'this configuration'} needs {variable}")
            elif field in values:
                problems.append(f"{variable}={values[field]!r} {_phrase(message)}")
            else:
                problems.append(f"{variable}: {_phrase(message)}")
        raise ConfigurationError("; ".join(problems)) from None


def _phrase(message: str) -> str:
    """Pydantic's "Input should be ..." as a clause after the value."""
    return re.sub(r"^input should", "should", message[:1].lower() + message[1:])


@functools.cache
def process_settings() -> Settings:
    """This process's settings, read from its environment on first use and kept for its lifetime."""
    return Settings.from_env()


def __getattr__(name: str) -> Settings:
    # `SETTINGS` is read on first use, not on import: importing the package reads no configuration.
    if name == "SETTINGS":
        return process_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def environment_variable(name: str) -> str | None:
    """One variable of this process's environment that is no setting (a local secret, a launcher's pid)."""
    return os.environ.get(name)


def process_environment() -> dict[str, str]:
    """This process's whole environment, for a child process started with it (as `subprocess` does)."""
    return dict(os.environ)


def replace_environment(env: Mapping[str, str]) -> None:
    """Make `env` this process's environment: a warm child takes its caller's (recsys_assets.pipes.warm_python)."""
    os.environ.clear()
    os.environ.update(env)


def dagster_home() -> str | None:
    """`DAGSTER_HOME`: the persistent Dagster instance's folder, if this process has one."""
    return os.environ.get("DAGSTER_HOME") or None


# Dagster reads these from the environment of the process that runs steps, and has no instance
# setting for them. Both cut a partition range run's per-day event writes (benchmarks/README.md):
# - DAGSTER_EVENT_BATCH_SIZE: a range's per-day materializations reach the event log in batches
#   (one write each in dagster-postgres and in recsys_assets.instance.event_log's SQLite storage);
# - DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS: one "planned" event per asset for a range run
#   instead of one per day. Dagster's trade-off: a failed range run does not mark each of its days
#   failed (the run itself still fails). The local event log storage declares this itself.
# The deployments set both in every container's environment; the local instance sets the batch size
# when its event log storage is created (see recsys_assets.instance.event_log). A value set wins.
DAGSTER_RANGE_RUN_ENVIRONMENT = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def batch_range_run_events() -> None:
    """Have Dagster hand a range run's events to the event log in batches, in this process."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", DAGSTER_RANGE_RUN_ENVIRONMENT["DAGSTER_EVENT_BATCH_SIZE"])


@functools.cache
def code_version() -> str | None:
    """The git commit the code runs from: `RECSYS_CODE_VERSION` (CI, the image build), else git's, else None."""
    configured_version = process_settings().code_version
    if configured_version:
        return configured_version
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def record_first_day(data_dir: Path, days: list[str]) -> None:
    """Remember the earliest of `days` (YYYY-MM-DD) as the data's first day, keeping an earlier one."""
    if not days:
        return
    path = data_dir / FIRST_DAY_FILE
    first = min(days)
    if path.exists() and path.read_text().strip() <= first:
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(first + "\n")


def settings_table() -> str:
    """Every setting as the README's Markdown table: variable, default, what it is."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = extra.get("shown_default") or (
            ""
            if info.default is None
            else str(info.default).lower()
            if isinstance(info.default, bool)
            else info.default
        )
        if isinstance(default, Path):
            default = str(default)
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        shown = f"`{default}`" if default not in ("", None) and not str(default).startswith(("the ", "`")) else default
        rows.append(f"| `{_env_name(info, name)}` | {shown or '—'} | {info.description} |")
    rows.append(f"| `{VERTEX_PREFIX}<FIELD>` | — | one per field of `VertexTrainingLauncher` (mappings as JSON) |")
    rows.append(f"| `{SECRET_PREFIX}<NAME>` | — | a local secret's value (`RECSYS_SECRETS=local`) |")
    rows += [f"| `{name}` | — | not a setting: {what} |" for name, what in NOT_SETTINGS.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
