"""What a distillation pair shares, measured before (or after) training: ``kdzoo analyze``.

- :mod:`kdzoo.analysis.cka`: linear CKA with the unbiased HSIC estimator, batch by batch;
- :mod:`kdzoo.analysis.readouts`: every stage readout of a task's student and teacher;
- :mod:`kdzoo.analysis.measure`: the teacher x student CKA matrix and the logit agreement over
  validation batches, for each teacher of the config;
- :mod:`kdzoo.analysis.suggest`: order-preserving stage matching and the ``distill_cfg`` snippet;
- :mod:`kdzoo.analysis.report`: ``similarity.csv`` and ``similarity.png``.
"""
