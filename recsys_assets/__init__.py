"""recsys_assets: a Dagster asset graph that keeps a recommendation model fresh."""
