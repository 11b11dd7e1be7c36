"""The Dagster instance's own pieces that `dagster.yaml` names: they subclass Dagster internals."""
