"""How methods train, one path for chapters, ``reproduce`` and the benchmarks:

* ``recipe`` (one recipe as data), ``official`` (the papers' recipes, each value with its
  source), ``recipes`` (how each method trains under each profile, every deviation with its
  reason, and the recipe card), ``optim`` (the optimiser and schedule a recipe names, from
  ``torch.optim``), ``loop`` (one training step: :class:`~clipadapt.training.loop.Trainer`),
  ``runstate`` (a run's whole state in a checkpoint, and its output folder), ``driver``
  (prepare, fit, evaluate: the one driver), ``dryrun`` (a run at full size for two steps
  on the CPU: its peak memory and whether it fits a T4).
"""
