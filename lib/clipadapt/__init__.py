"""clipadapt: the library that the Efficient CLIP Adaptation book builds and tests.

Packages in layers, each importing only from the layers below it (``tests/test_imports.py``
checks it, module by module):

* ``profiles`` (tiny / colab / paper, and the device), ``viz`` (figures, glued numbers),
  ``quoted`` (the glued numbers shown under their cells where myst-nb is absent, as on
  Colab) and ``explorer`` (the chapters' explorers: every state precomputed for the static
  page, and ipywidgets in a live kernel);
* ``core`` -- the pieces a method is built from: models, prompting, patching, merge,
  losses, metrics, flops, features, and the files, seeds, pixels, checkpoints and
  distributed pieces under them;
* ``data`` -- the synthetic worlds, video decoding, downloads and one loader per real format;
* ``methods`` -- one method a file, the :class:`~clipadapt.methods.protocol.Method`
  protocol and the ``registry``;
* ``tasks`` -- one task family a module, the :class:`~clipadapt.tasks.protocol.Task` protocol;
* ``training`` -- recipes (read from the ``recipes/`` data files), the train loop, run
  states and the ``driver`` (prepare, fit, evaluate: the one path every chapter,
  ``reproduce`` and benchmark trains through);
* ``experiments`` -- every run a chapter shows, as data (``experiments/chNN.toml``), and the
  ``Lab`` that chapters run them with;
* the applications: ``chapter`` (what a chapter's first cell calls), ``reproduce`` (an
  experiment, or a method's recipe, as one resumable command), ``pretrain`` (the tiny CLIP of chapter 1),
  ``book`` (execute the chapters and build the book; ``kernels``, the kernel client it
  executes them through; ``citations``, the chapters' citations as text and as the book's
  roles) and ``bench`` (the benchmark tables).
"""

__version__ = "0.1.0"
