"""Every run the book shows, as data: one TOML file per chapter (``experiments/chNN.toml``),
each experiment a named spec (method, variant, how the task is built, recipe overrides with
their reasons, seeds, what each profile changes).

* ``spec`` -- the file format and its checks (:class:`Experiment`, :func:`load_file`);
* ``settings`` -- what the chapters' tasks are made of under each profile (the few-shot data,
  the video sets, the scene world, the suite, chapter 1's pre-training), from
  ``experiments/_settings.toml``;
* ``build`` -- how each kind of task is built from a spec (:class:`Workbench`);
* ``lab`` -- :class:`Lab`, what a chapter runs experiments with, and :func:`prepare`, what
  ``python -m clipadapt.reproduce chNN/NAME`` runs them with; :func:`default`, the experiment
  ``reproduce METHOD`` runs;
* ``store`` -- finished runs filed on disk under a key of everything they depend on, so that
  a later chapter reads an earlier chapter's runs (:meth:`Lab.borrow`).
"""

from . import settings
from .build import Workbench
from .lab import (Lab, Runs, all_specs, chapters, default, get, names, point_label, prepare, recipe_of, record,
                  record_name)
from .spec import Experiment, Override, SpecError, load_file

__all__ = ["Experiment", "Lab", "Override", "Runs", "SpecError", "Workbench", "all_specs", "chapters", "default",
           "get", "load_file", "names", "point_label", "prepare", "recipe_of", "record", "record_name", "settings"]
