"""Shared fixtures. Stand-ins for cloud services live in `standins/`, one module per service."""

pytest_plugins: list[str] = [
    "recsys_assets_tests.standins.s3",  # before vertex, which builds on its moto server
    "recsys_assets_tests.standins.vertex",
    "recsys_assets_tests.standins.secret_manager",
    "recsys_assets_tests.standins.github",
    "recsys_assets_tests.standins.bigquery",
]
