"""``python -m clipadapt.data.fetch NAME ...``: fetch datasets into the data root."""

from .download import main

raise SystemExit(main())
