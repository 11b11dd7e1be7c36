"""Shared fixtures. Stand-ins for cloud services live in `standins/`, one module per service."""

pytest_plugins: list[str] = ["recsys_assets_tests.standins.vertex"]
