"""Dagster Pipes pieces this project adds: a Vertex AI custom-job client (`vertex`), object-store
channels (`channels`) and the worker-side session opener (`worker`).

Import from the submodules: `worker` runs at the start of every training container and must not
pull in Dagster or the Vertex AI client.
"""
