"""How methods train, one path for chapters, ``reproduce`` and the benchmarks:

* ``recipes`` (how each method trains under each profile, as data), ``loop`` (the
  optimiser, the schedule and one training step: :class:`~clipadapt.training.loop.Trainer`),
  ``runstate`` (a run's whole state in a checkpoint, and its output folder), ``driver``
  (prepare, fit, evaluate: the one driver).
"""
