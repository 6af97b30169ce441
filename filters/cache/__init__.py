"""The content-addressed cache of figures and their data: :mod:`~filters.cache.keys` (what a key
is a hash of), :mod:`~filters.cache.sources` (the digest of the code a kind runs, and the one rule
for the text for people it leaves out), :mod:`~filters.cache.store` (entries with checksums,
manifests, ``clean``). Nothing here imports torch or matplotlib."""
