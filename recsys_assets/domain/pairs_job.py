"""The embedded warehouse's engine process: `python -m recsys_assets.domain.pairs_job SPEC.json` runs the pair pipeline.

DuckDB's pipeline over a long window needs GiBs of working memory (a window function over every
pair at once: a fixed 512 MiB limit fails at 30 M events), so the embedded warehouse runs it in a
process of its own, as BigQuery runs it on its own machines: the orchestrator's memory stays flat in
the data's size. The spec (written by `DuckDBWarehouse.build_pairs`) names the extracts, the split
parameters, the catalogue's Parquet file, the output folder and DuckDB's memory limit; the content
hash is the last line on stdout, a failure one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from recsys_assets.domain.pair_pipeline import (
    DUCKDB,
    DuckDBEngine,
    PairsFiles,
    Relations,
    extract_dataset,
    register_inputs,
    run_pipeline,
)
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.splitting import PROTOCOLS


def run(spec: dict) -> str:
    """Run the pipeline the spec describes; returns the content hash of the files written."""
    if list(spec["protocols"]) != list(PROTOCOLS):
        raise ValueError(f"protocols {spec['protocols']} are not this code's {list(PROTOCOLS)}")
    params = SplitParams.model_validate(spec["params"])
    catalogue = pq.read_table(spec["catalogue"])["item_id"] if spec.get("catalogue") else None
    with tempfile.TemporaryDirectory(prefix="recsys-pairs-") as spill:
        # A database file beside the spill folder: the labelled pairs and the index are tables DuckDB can
        # write out and evict, not blocks that must stay pinned in memory.
        con = duckdb.connect(
            str(Path(spill) / "pairs.duckdb"),
            config={
                "memory_limit": f"{int(spec['memory_mib'])}MB",
                "temp_directory": spill,
                # The pairs are sorted explicitly at the end; elsewhere row order is free, which saves memory.
                "preserve_insertion_order": False,
            },
        )
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("events", extract_dataset(list(spec["extracts"])))
            register_inputs(con, params, catalogue)
            return run_pipeline(
                DuckDBEngine(con),
                DUCKDB,
                Relations(),
                params,
                PROTOCOLS,
                PairsFiles(spec["folder"]),
                int(spec["shard_rows"]),
            )
        finally:
            con.close()


def main() -> None:
    try:
        print(run(json.loads(Path(sys.argv[1]).read_text())))
    except Exception as exc:  # one line for the orchestrator's error, never a traceback of row data
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
