"""Benchmarks that print a table: ``python -m clipadapt.bench`` (``make bench``), one module a concern.

* ``chapters`` -- each chapter's wall time and peak memory under ``tiny``, against the
  targets, and the shipped tiny CLIP's held-out accuracy and retrieval;
* ``tempme`` -- TempMe's cost, speed and memory beside LoRA and VoP;
* ``lora`` -- clipadapt's LoRA beside peft's (``--lora``);
* ``video`` -- decoding throughput and each VoP variant's multiply-adds (``--video``);
* ``memory`` -- the peak resident memory of a process tree, sampled.
"""
