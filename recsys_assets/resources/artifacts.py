"""Where intermediate artefacts (extracts, training sets, models) live between steps."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from recsys_assets import storage


class ArtifactStore(dg.ConfigurableResource):
    """Root URI (local folder, s3:// or gs://) of the per-partition intermediate artefacts."""

    root_uri: str = Field(description="Local folder or object-store URI that holds intermediate artefacts.")

    def uri(self, asset: str, partition_key: str, name: str = "") -> str:
        """Address of one artefact file of one asset partition (or its folder when `name` is empty)."""
        return storage.join(self.root_uri, asset, partition_key, name) if name else storage.join(
            self.root_uri, asset, partition_key
        )
