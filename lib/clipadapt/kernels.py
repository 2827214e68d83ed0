"""A Jupyter kernel client that looks for its messages again every second.

Why: ``zmq.asyncio`` learns that a socket has a message from the socket's ``zmq.FD``,
which is edge-triggered: when the wake-up is consumed without the message being read, the
message sits in the socket and the waiting ``poll`` only finds it when its own timeout
expires (pyzmq then polls once more, without waiting). nbclient waits for a cell's reply
with the whole cell limit as that timeout, and for its outputs with none; so a lost wake-up
holds a chapter for the whole limit, or for ever. Book executions here stalled exactly so,
in cells calling ipywidgets' ``interact``: the kernel idle, papermill waiting, and the cell
finishing with all its outputs at the very second its limit ran out.

:class:`WakefulKernelManager` gives nbclient clients whose shell and IOPub channels poll
for at most :data:`WAKE_S` seconds at a time: every fresh poll checks the socket itself, so a
lost wake-up costs at most that long. Pass it as papermill's ``kernel_manager_class``.

jupyter_client 8 names the asyncio channel ``AsyncZMQSocketChannel``; jupyter_client 7 (Colab
ships 7.4.9) has only ``ZMQSocketChannel``, which is that same asyncio channel (its blocking
client wraps it), with the same ``get_msg``: :data:`StockChannel` is whichever is there, and the
wakeful channel builds on it on both.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from traitlets import DottedObjectName, Type

try:  # jupyter_client >= 8
    from jupyter_client.channels import AsyncZMQSocketChannel as StockChannel
except ImportError:  # jupyter_client 7: its one socket channel is the asyncio one
    from jupyter_client.channels import ZMQSocketChannel as StockChannel

WAKE_S = 1.0  # seconds a channel waits before it looks at its socket again


class WakefulChannel(StockChannel):
    """``get_msg`` with the stock channel's meaning (``timeout`` seconds, ``None`` for ever,
    ``Empty`` when nothing came), waiting in slices of at most ``WAKE_S`` seconds."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAKE_S if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(WAKE_S, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class WakefulKernelClient(AsyncKernelClient):
    shell_channel_class = Type(WakefulChannel)
    iopub_channel_class = Type(WakefulChannel)


class WakefulKernelManager(AsyncKernelManager):
    # both: client() builds client_factory, which AsyncKernelManager gives a fixed default
    # instead of deriving it from client_class
    client_class = DottedObjectName("clipadapt.kernels.WakefulKernelClient")
    client_factory = Type(WakefulKernelClient, klass=AsyncKernelClient)
