"""The experiment engine: training runs for a budget (:mod:`kdzoo.experiments.runs`) and the
experiments built from them, ``kdzoo compare``'s paired multi-seed verdict
(:mod:`kdzoo.experiments.paired`) and ``kdzoo plug-and-play``'s matrix; docs/architecture.md
draws how they fit together. Their results are reused only by runs of the same setup
(:mod:`kdzoo.experiments.fingerprint`), written crash-safe (:mod:`kdzoo.experiments.rows`), one
run per results folder at a time (:mod:`kdzoo.experiments.lock`); docs/results.md, "Reused
results".
"""
