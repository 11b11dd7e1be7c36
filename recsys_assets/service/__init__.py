"""The online service: the champion's recommendations over HTTP, following promotions without a restart.

`app.create_app(follower, metrics)` is the ASGI app; `champion.ChampionFollower` loads and swaps
versions; `lists` computes a list from a bundle; `metrics` is what `/metrics` exposes; `cli` is
`python -m recsys_assets serve`.
"""
