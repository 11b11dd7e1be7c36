"""Model families: one interface (`base.Recommender`), one module per family, and `registry`, which knows them all."""
