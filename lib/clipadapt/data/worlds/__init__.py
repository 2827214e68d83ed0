"""Synthetic worlds: small, fully known data that make each method's effect visible.

* ``images`` -- objects with a shape, a colour, a size and a position, and captions
  written from templates (chapter 1; the vocabulary every later world shares);
* ``videos`` -- those objects moving or appearing, captions that depend on the order of
  the frames, written as mp4 files (chapters 3-5);
* ``scenes`` -- several objects whose labels co-occur by scene type (chapter 6).

The worlds' public names are all reachable from here (``worlds.ImageWorld``,
``worlds.VideoWorld``, ``worlds.SceneWorld``, ...).
"""

from .images import *  # noqa: F401,F403
from .images import _uniform, generator  # noqa: F401
from .scenes import *  # noqa: F401,F403
from .videos import *  # noqa: F401,F403
