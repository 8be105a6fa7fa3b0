"""The experiment engine: training runs for a budget (:mod:`kdzoo.experiments.runs`) and the
experiments built from them, ``tools/compare.py``'s paired multi-seed verdict
(:mod:`kdzoo.experiments.paired`) and ``tools/plug_and_play.py``'s matrix; docs/architecture.md
draws how they fit together.
"""
