#!/usr/bin/env bash
# Install the local BigQuery emulator the test suite starts (bqemulator, DuckDB-backed) into
# .emulators/bigquery, idempotently: a second run with the same pins returns at once.
#
# Layout:
#   .emulators/bigquery/venv/   its own virtualenv (bqemulator needs duckdb 1.5.x; the project uses 2.x)
#   .emulators/bigquery/home/   HOME for the emulator process: DuckDB's extension folder lives under it,
#                               pre-filled from the duckdb-extension-* wheels so DuckDB never downloads
#   .emulators/bigquery/.installed  stamp holding the hash of this script (changing a pin reinstalls)
#
# Needs only a Python >= 3.11 and PyPI; runs unattended (CI: root, no stdin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${BIGQUERY_EMULATOR_DIR:-$ROOT/.emulators/bigquery}"
DUCKDB_VERSION=1.5.5
STAMP="$DEST/.installed"
WANT="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$DEST/venv/bin/bqemulator" ]]; then
    exit 0
fi

mkdir -p "$(dirname "$DEST")"
# Two concurrent installs (parallel make, two shells) would trample one venv.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DEST.lock"
    flock 9
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$DEST/venv/bin/bqemulator" ]]; then
        exit 0
    fi
fi

pick_python() {
    local candidate
    for candidate in "${BIGQUERY_EMULATOR_PYTHON:-}" "$ROOT/.venv/bin/python" python3.11 python3.12 python3.13 python3; do
        [[ -n "$candidate" ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || [[ -x "$candidate" ]] || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "no Python >= 3.11 found for the BigQuery emulator (set BIGQUERY_EMULATOR_PYTHON)" >&2
    return 1
}
PYTHON="$(pick_python)"

echo "installing the BigQuery emulator into $DEST (one-off, about 30 s)"
rm -rf "$DEST"
mkdir -p "$DEST"
"$PYTHON" -m venv "$DEST/venv"

# The emulator's whole dependency set as tried here, pinned so a fresh machine gets the same emulator.
cat >"$DEST/constraints.txt" <<'EOF'
alembic==1.20.1
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
asgiref==3.13.0
bqemulator==1.4.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
duckdb==1.5.5
duckdb-extension-avro==1.5.5
duckdb-extension-spatial==1.5.5
fastapi==0.165.0
fastavro==1.13.1
google-api-core==2.44.0
google-auth==2.63.0
google-cloud-bigquery-storage==2.43.0
googleapis-common-protos==1.76.0
grpcio==1.85.3
grpcio-health-checking==1.80.1
grpcio-status==1.85.3
grpcio-tools==1.80.1
h11==0.16.0
httpcore==1.0.9
httptools==0.9.0
httpx==0.28.1
idna==3.20
Mako==1.4.3
MarkupSafe==3.0.4
numpy==2.4.6
opentelemetry-api==1.45.2
opentelemetry-exporter-http-transport==0.66b2
opentelemetry-exporter-otlp==1.45.2
opentelemetry-exporter-otlp-common==0.66b2
opentelemetry-exporter-otlp-proto-common==1.45.2
opentelemetry-exporter-otlp-proto-grpc==1.45.2
opentelemetry-exporter-otlp-proto-http==1.45.2
opentelemetry-instrumentation==0.66b2
opentelemetry-instrumentation-asgi==0.66b2
opentelemetry-instrumentation-fastapi==0.66b2
opentelemetry-instrumentation-grpc==0.66b2
opentelemetry-proto==1.45.2
opentelemetry-sdk==1.45.2
opentelemetry-semantic-conventions==0.66b2
opentelemetry-util-http==0.66b2
orjson==3.13.0
packaging==26.4
prometheus_client==0.26.0
proto-plus==1.29.0
protobuf==6.33.6
pyarrow==26.0.1
pyasn1==0.6.5
pyasn1_modules==0.4.2
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
PyJWT==2.15.1
python-dotenv==1.2.4
pytz==2026.6
PyYAML==6.0.4
requests==2.34.2
SQLAlchemy==2.1.9
sqlglot==30.11.0
starlette==1.10.0
structlog==26.1.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
uvicorn==0.54.0
uvloop==0.23.0
watchfiles==1.3.0
websockets==17.4
wrapt==2.5.2
EOF

# numpy: the emulator registers numpy-backed UDFs at start-up and fails without it (not a declared dependency).
# spatial is required at start-up, avro is optional; duckdb 1.5.5 has icu, json and parquet built in.
"$DEST/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -c "$DEST/constraints.txt" \
    bqemulator numpy "duckdb==$DUCKDB_VERSION" \
    "duckdb-extension-spatial==$DUCKDB_VERSION" "duckdb-extension-avro==$DUCKDB_VERSION"

# Put the extension files where DuckDB looks for them under HOME, for the platform DuckDB reports.
HOME_DIR="$DEST/home"
"$DEST/venv/bin/python" - "$HOME_DIR" "$DUCKDB_VERSION" <<'EOF'
import importlib.util
import shutil
import sys
from pathlib import Path

import duckdb

home, version = Path(sys.argv[1]), sys.argv[2]
platform = duckdb.connect().sql("PRAGMA platform").fetchone()[0]
target = home / ".duckdb" / "extensions" / f"v{version}" / platform
target.mkdir(parents=True, exist_ok=True)
for name in ("spatial", "avro"):
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    source = Path(spec.origin).parent / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    shutil.copyfile(source, target / source.name)
print(f"DuckDB extensions for {platform} in {target}")
EOF

# Prove the emulator's DuckDB loads spatial from that folder with downloads switched off.
HOME="$HOME_DIR" "$DEST/venv/bin/python" -c '
import duckdb
con = duckdb.connect(config={"autoinstall_known_extensions": "false"})
con.execute("LOAD spatial")
con.execute("LOAD avro")
'
"$DEST/venv/bin/bqemulator" --version
echo "$WANT" >"$STAMP"
echo "BigQuery emulator ready: $DEST/venv/bin/bqemulator (start it with HOME=$HOME_DIR)"
