"""``python -m bench``: spend the tenant's 50 requests a minute well.

Runs the real poller and the real processor handler (AWS in memory from ``sim.aws``, the Lucca
simulator with its window compressed 30x; nothing else compressed) against a naive walkthrough
client, and reports requests per booked invoice,
drain time against what the budget allows, 429s, behaviour under external load and the
handlers' cold-start import time. See ``bench/__main__.py`` for the flags.
"""
