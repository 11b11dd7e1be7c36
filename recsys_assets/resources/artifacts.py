"""Where intermediate artefacts (extracts, training sets, models) live between steps."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from recsys_assets.domain.layout import ArtifactLayout


class ArtifactStore(dg.ConfigurableResource):
    """Root URI (local folder, s3:// or gs://) of the per-partition intermediate artefacts."""

    root_uri: str = Field(description="Local folder or object-store URI that holds intermediate artefacts.")

    def layout(self, run: dg.DagsterRun) -> ArtifactLayout:
        """Typed addresses of `run`'s artefacts; a re-execution keeps its original run's folders."""
        return ArtifactLayout(self.root_uri, run=run.root_run_id or run.run_id)
