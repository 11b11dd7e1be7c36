"""A stand-in training entrypoint for the Vertex client tests; its Pipes extra `mode` says what to do.

It opens Pipes exactly as `recsys_assets.train` should (`open_training_pipes`), so whatever works
here works there: `ok` reports metadata, `fail` raises, `hang` sleeps until it is cancelled.
"""

from __future__ import annotations

import os
import time

from recsys_assets.pipes.worker import open_training_pipes


def main() -> None:
    with open_training_pipes() as pipes:
        mode = pipes.get_extra("mode")
        pipes.log.info(f"pipes worker started in mode {mode}")
        if mode == "fail":
            raise RuntimeError("boom: the training set is empty")
        if mode == "hang":
            time.sleep(600)  # until the job is cancelled
        pipes.report_asset_materialization(
            metadata={
                "rows": {"raw_value": 3, "type": "int"},
                "openblas_threads": {"raw_value": os.environ.get("OPENBLAS_NUM_THREADS", ""), "type": "text"},
            }
        )


if __name__ == "__main__":
    main()
