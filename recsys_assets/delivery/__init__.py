"""Delivery: the released champion's lists written back to the warehouse every day, and their measured outcome.

These assets follow the released champion, not a retrain: the retrain job leaves them out, and their
own job (`delivery_job`) runs them when the day's data arrives or the champion changes.
"""

# The delivery assets, by key: what the retrain selections leave out.
DELIVERY_ASSETS = ("recommendations", "recommendation_outcomes")
