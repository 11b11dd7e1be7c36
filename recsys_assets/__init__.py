"""recsys_assets: a Dagster asset graph that keeps a recommendation model fresh.

Importing the package reads no setting, builds no resource and sets no environment variable; the code
location (`recsys_assets.definitions`) is built when Dagster loads it.
"""
