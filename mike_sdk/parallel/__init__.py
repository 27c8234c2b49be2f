"""Helper processes that answer whole blocks of a run from the response cache.

A fully cached re-run of a whole configuration is CPU work only: planning, keying,
reading the cache, scoring and writing half a million rows. One Python process does it
on one core. Where the machine has more, the run's process starts helpers
(:mod:`~mike_sdk.parallel.pool`): each claims blocks of the plan (a task and a language
pair), answers them from the cache alone (:mod:`~mike_sdk.parallel.helper`) and sends
back the block's rows and requests, packed as the run folder stores them; the run's
process writes them. A helper never calls the model: a block whose answer is not cached
is given back, and the run's process answers it as it answers its own.
"""
