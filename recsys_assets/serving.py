"""The serving API: `load_bundle(uri).recommend(user_id, seen_item_ids, n=10)` for a bundle of any family."""

from recsys_assets.domain.serving import Bundle, BundleIntegrityError, ServingInputError, load_bundle

__all__ = ["Bundle", "BundleIntegrityError", "ServingInputError", "load_bundle"]
