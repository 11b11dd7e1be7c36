"""Shared fixtures. Stand-ins for cloud services live in `standins/`, one module per service."""

pytest_plugins: list[str] = [
    "recsys_assets_tests.standins.vertex",
    "recsys_assets_tests.standins.s3",
    "recsys_assets_tests.standins.secret_manager",
    "recsys_assets_tests.standins.github",
]
