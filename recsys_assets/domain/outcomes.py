"""The outcome of served lists: what the users served on one day did on the next, beside a counterfactual list.

Metrics for the lists served on day D-1 against the interactions of the horizon starting at D, per
model version (a release shows as a step in the series). An interaction's gain is its weight times
its event type's weight, the confidence training uses (an apply counts five views by default):

- hit rate@n: share of users served who interacted with at least one item of their list;
- precision@n: recommended items interacted with / n, over every user served;
- recall@n: recommended items interacted with / items interacted with, over users served who interacted;
- NDCG@n: gain-weighted DCG / ideal DCG, over users served who interacted;
- interaction share: the share of all the horizon's interaction gain (every user's, served or not)
  that went to items recommended to that user.

Computed as one SQL statement over the Arrow tables (DuckDB in memory): no Python loop over users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa

METRICS = ("hit_rate", "precision", "recall", "ndcg", "interaction_share")
# The label of the counterfactual's rows: popularity over the 7 days before the lists' day.
COUNTERFACTUAL = "popularity_7d"


@dataclass(frozen=True)
class Outcome:
    """One list source's outcome over a horizon."""

    version: str
    users: int
    users_interacting: int
    hit_rate: float
    precision: float
    recall: float
    ndcg: float
    interaction_share: float

    def numbers(self, prefix: str) -> dict[str, float | int]:
        return {f"{prefix}_{name}": round(float(value), 6) for name, value in asdict(self).items() if name != "version"}


OUTCOME_SQL = """
WITH gains AS (
    SELECT e.user_id, e.item_id, sum(e.weight * coalesce(w.type_weight, 1.0)) AS gain
    FROM events e LEFT JOIN type_weights w USING (event_type)
    GROUP BY e.user_id, e.item_id
),
served AS (SELECT DISTINCT user_id, model_version FROM lists),
per_user AS (
    SELECT s.user_id, s.model_version,
           count(g.gain) AS hits,
           coalesce(sum(g.gain / log2(l.rank + 1)), 0) AS dcg,
           coalesce(sum(g.gain), 0) AS hit_gain
    FROM served s
    LEFT JOIN lists l ON l.user_id = s.user_id AND l.model_version = s.model_version
    LEFT JOIN gains g ON g.user_id = l.user_id AND g.item_id = l.item_id
    GROUP BY s.user_id, s.model_version
),
relevant AS (
    SELECT user_id, count(*) AS items, sum(gain / log2(position + 1)) FILTER (WHERE position <= $n) AS idcg
    FROM (SELECT user_id, gain, row_number() OVER (PARTITION BY user_id ORDER BY gain DESC, item_id) AS position
          FROM gains)
    GROUP BY user_id
)
SELECT p.model_version AS version,
       count(*) AS users,
       count(r.items) AS users_interacting,
       coalesce(avg(CASE WHEN p.hits > 0 THEN 1.0 ELSE 0.0 END), 0) AS hit_rate,
       coalesce(avg(p.hits / $n), 0) AS precision,
       coalesce(avg(p.hits / r.items) FILTER (WHERE r.items > 0), 0) AS recall,
       coalesce(avg(p.dcg / r.idcg) FILTER (WHERE r.items > 0), 0) AS ndcg,
       coalesce(sum(p.hit_gain) / nullif((SELECT sum(gain) FROM gains), 0), 0) AS interaction_share
FROM per_user p LEFT JOIN relevant r USING (user_id)
GROUP BY p.model_version
ORDER BY p.model_version
"""


def outcomes(lists: pa.Table, events: pa.Table, n: int, type_weights: Mapping[str, float]) -> list[Outcome]:
    """The outcome of each model version's lists in `lists` (day, user_id, rank, item_id, ..., model_version)
    against `events` (user_id, item_id, event_type, weight): one `Outcome` per version, by version."""
    weights = pa.table(
        {"event_type": list(type_weights), "type_weight": pa.array(list(type_weights.values()), pa.float64())}
    )
    con = duckdb.connect()
    try:
        con.register("lists", lists.select(["user_id", "rank", "item_id", "model_version"]))
        con.register("events", events.select(["user_id", "item_id", "event_type", "weight"]))
        con.register("type_weights", weights)
        rows = con.execute(OUTCOME_SQL, {"n": float(n)}).fetchall()
    finally:
        con.close()
    return [Outcome(str(row[0]), int(row[1]), int(row[2]), *(float(value) for value in row[3:])) for row in rows]


def outcome_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per day and served version, the model's metrics beside the counterfactual's."""
    header = (
        "| day | version | users | hit rate | counterfactual | precision | recall | ndcg | counterfactual ndcg | "
        "interaction share |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for row in rows:
        if row.get("note"):
            lines.append(f"| {row['day']} | {row['note']} | | | | | | | | |")
            continue
        lines.append(
            f"| {row['day']} | {row['version']} | {int(row['users']):,} | {float(row['hit_rate']):.4f} | "
            f"{float(row['counterfactual_hit_rate']):.4f} | {float(row['precision']):.4f} | "
            f"{float(row['recall']):.4f} | {float(row['ndcg']):.4f} | "
            f"{float(row['counterfactual_ndcg']):.4f} | {float(row['interaction_share']):.4f} |"
        )
    return "\n".join(lines)
