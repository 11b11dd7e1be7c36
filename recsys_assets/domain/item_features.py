"""Item features with scikit-learn: TF-IDF on the posting's text, one-hot on category and location.

`fit_features` fits a `Pipeline(ColumnTransformer(Tfidf, OneHot), Normalizer)` on a catalogue and
returns an `ItemFeaturizer`: the fitted vocabulary, idf weights and categories as plain arrays. It
is saved as `.npz` without pickle and reloaded to transform postings that appear later (a bundle
carries it, so serving can score a posting the model never saw) with exactly the fitted weights:
`transform` recomposes the fitted parts and a test proves it matches the pipeline's output.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets.domain.events import filled_numpy

# scikit-learn and pandas are imported where a catalogue is featurised, not with this module: they
# cost ~1.5 s of import (and teardown) in every process that loads the graph or the training child,
# and a run on an empty catalogue never needs them (benchmarks/README.md, issue 14).
if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ("category", "location")
# TF-IDF settings; saved with the arrays so a reloaded featurizer tokenises the same way.
TFIDF = {"lowercase": True, "token_pattern": r"(?u)\b\w[\w+#.]*\b", "sublinear_tf": True, "dtype": "float32"}


def l2_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """`matrix` with every non-zero row scaled to unit L2 norm, as float32 CSR."""
    from sklearn.preprocessing import normalize

    return sp.csr_matrix(cast(sp.csr_matrix, normalize(matrix, norm="l2", copy=False)), dtype=np.float32)


def _frame(items: pa.Table) -> pd.DataFrame:
    """The columns the pipeline reads: one text column (title + description) and the categoricals."""
    import pandas as pd

    # pyarrow's stubs type fill_null's result after the fill value; with a column in, a column comes out.
    title: Any = pc.fill_null(items["title"], pa.scalar(""))
    description: Any = pc.fill_null(items["description"], pa.scalar(""))
    text: Any = pc.binary_join_element_wise(title, description, pa.scalar(" "))
    columns = {"text": text.to_numpy(zero_copy_only=False)}
    for name in CATEGORICAL:
        columns[name] = filled_numpy(items[name], "")
    return pd.DataFrame(columns)


def build_pipeline(min_df: int, max_features: int | None, categorical_weight: float) -> Pipeline:
    """The unfitted scikit-learn pipeline: sparse output, rows L2-normalised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer, OneHotEncoder

    tfidf = TfidfVectorizer(
        min_df=min_df,
        max_features=max_features,
        lowercase=bool(TFIDF["lowercase"]),
        token_pattern=str(TFIDF["token_pattern"]),
        sublinear_tf=bool(TFIDF["sublinear_tf"]),
        dtype=cast(Any, np.float32),
    )
    onehot = OneHotEncoder(handle_unknown="ignore", dtype=cast(Any, np.float32))
    columns = ColumnTransformer(
        [("text", tfidf, "text"), ("categorical", onehot, list(CATEGORICAL))],
        transformer_weights={"text": 1.0, "categorical": categorical_weight},
        sparse_threshold=1.0,
    )
    return Pipeline([("columns", columns), ("l2", Normalizer(norm="l2"))])


@dataclass
class ItemFeaturizer:
    """A fitted feature transformer as arrays: the vocabulary (by column), idf weights and categories."""

    terms: np.ndarray
    idf: np.ndarray
    categories: list[np.ndarray]
    categorical_weight: float

    @property
    def n_features(self) -> int:
        return len(self.terms) + sum(len(c) for c in self.categories)

    def transform(self, items: pa.Table) -> sp.csr_matrix:
        """The L2-normalised CSR features of `items` (catalogue contract), one row per posting."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import OneHotEncoder

        frame = _frame(items)
        tfidf = TfidfVectorizer(
            vocabulary={term: i for i, term in enumerate(self.terms.tolist())},
            lowercase=bool(TFIDF["lowercase"]),
            token_pattern=str(TFIDF["token_pattern"]),
            sublinear_tf=bool(TFIDF["sublinear_tf"]),
            dtype=cast(Any, np.float32),
        )
        tfidf.idf_ = self.idf
        text = tfidf.transform(frame["text"])
        onehot = OneHotEncoder(
            categories=cast(Any, [c.tolist() for c in self.categories]),
            handle_unknown="ignore",
            dtype=cast(Any, np.float32),
        )
        import pandas as pd

        # With fixed categories, fitting only checks them: nothing is learned from this frame.
        onehot.fit(
            pd.DataFrame(
                {name: c[:1] if len(c) else [""] for name, c in zip(CATEGORICAL, self.categories, strict=True)}
            )
        )
        categorical = onehot.transform(frame[list(CATEGORICAL)])
        weighted = sp.csr_matrix(categorical) * np.float32(self.categorical_weight)
        return l2_rows(sp.csr_matrix(sp.hstack(cast(Any, [text, weighted]), format="csr")))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays = {"terms": self.terms, "idf": self.idf}
        arrays |= {f"categories_{name}": c for name, c in zip(CATEGORICAL, self.categories, strict=True)}
        config = {"categorical_weight": self.categorical_weight, "tfidf": TFIDF}
        np.savez(buffer, allow_pickle=False, config=np.asarray(json.dumps(config)), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ItemFeaturizer:
        """A featurizer saved by `to_bytes`.

        Raises:
            ValueError: it was saved with other tokeniser settings than this code uses.
        """
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            config = json.loads(str(arrays["config"]))
            if config["tfidf"] != TFIDF:
                raise ValueError(f"feature transformer saved with TF-IDF settings {config['tfidf']}, expected {TFIDF}")
            return cls(
                terms=arrays["terms"],
                idf=arrays["idf"],
                categories=[arrays[f"categories_{name}"] for name in CATEGORICAL],
                categorical_weight=float(config["categorical_weight"]),
            )


def fit_features(
    items: pa.Table, min_df: int = 1, max_features: int | None = 50_000, categorical_weight: float = 0.5
) -> tuple[ItemFeaturizer, sp.csr_matrix]:
    """Fit the pipeline on `items` and return the featurizer and the catalogue's feature matrix.

    Raises:
        ValueError: the catalogue is empty or no posting has any text.
    """
    if items.num_rows == 0:
        raise ValueError("cannot build item features: the catalogue is empty")
    pipeline = build_pipeline(min_df, max_features, categorical_weight)
    try:
        features = pipeline.fit_transform(_frame(items))
    except ValueError as exc:  # TfidfVectorizer: "empty vocabulary; perhaps the documents only contain stop words"
        raise ValueError(f"cannot build item features: no posting has usable text ({exc})") from exc
    columns: ColumnTransformer = pipeline.named_steps["columns"]
    tfidf: TfidfVectorizer = columns.named_transformers_["text"]
    onehot: OneHotEncoder = columns.named_transformers_["categorical"]
    vocabulary = tfidf.vocabulary_
    terms = np.empty(len(vocabulary), dtype=object)
    terms[list(vocabulary.values())] = list(vocabulary.keys())
    featurizer = ItemFeaturizer(
        terms=terms.astype(str),
        idf=np.asarray(tfidf.idf_, dtype=np.float64),
        categories=[np.asarray(c).astype(str) for c in onehot.categories_],
        categorical_weight=categorical_weight,
    )
    return featurizer, sp.csr_matrix(features, dtype=np.float32)


def features_to_bytes(features: sp.csr_matrix) -> bytes:
    buffer = io.BytesIO()
    sp.save_npz(buffer, features)
    return buffer.getvalue()


def features_from_bytes(data: bytes) -> sp.csr_matrix:
    return sp.csr_matrix(sp.load_npz(io.BytesIO(data)))


def positions(item_ids: pa.Array | pa.ChunkedArray, feature_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The feature row of each of `item_ids`, -1 for an item the catalogue does not have."""
    values = feature_ids.combine_chunks() if isinstance(feature_ids, pa.ChunkedArray) else feature_ids
    found = pc.index_in(item_ids, value_set=values)
    return np.asarray(filled_numpy(found, -1), dtype=np.int64)


def align(features: sp.csr_matrix, feature_ids: pa.Array | pa.ChunkedArray, item_ids: pa.Array) -> sp.csr_matrix:
    """Rows of `features` (keyed by `feature_ids`) in the order of `item_ids`; an item without features is a zero row."""
    rows = positions(item_ids, feature_ids)
    known = rows >= 0
    selector = sp.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (np.flatnonzero(known), rows[known])),
        shape=(len(item_ids), features.shape[0]),
    )
    return sp.csr_matrix(selector @ features)
