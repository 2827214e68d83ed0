"""Fetching the real datasets: every file as data (:mod:`.resources`: URL, published hash,
what must exist afterwards), HTTP downloads that resume (:mod:`.transfer`), unpacking and
content checks (:mod:`.archives`), and the command that puts it together (:mod:`.download`):
``python -m clipadapt.data.fetch NAME`` (``--list``: what is present)."""
