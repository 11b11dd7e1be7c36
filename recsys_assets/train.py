"""`python -m recsys_assets.train`: the training entrypoint every launcher runs (recsys_assets.training.worker).

Kept at this path because images, Vertex AI job specs and the launchers name this module.
"""

from recsys_assets.training.worker import main

if __name__ == "__main__":
    main()
