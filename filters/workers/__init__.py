"""Computing the blocks that miss the cache: each in a warm process forked from one that imported
torch, matplotlib and the engine once (:mod:`~filters.workers.warm`), the longest first, at most one
per core (:mod:`~filters.workers.jobs`); and the one place that decides and enforces a block's time
limit (:mod:`~filters.workers.limits`)."""
