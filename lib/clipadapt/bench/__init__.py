"""Benchmarks that print a table: ``python -m clipadapt.bench`` (``make bench``), one module a concern.

* ``chapters`` -- each chapter's wall time and peak memory under ``tiny``, against the
  targets, and the shipped tiny CLIP's held-out accuracy and retrieval;
* ``tempme`` -- TempMe's cost, speed and memory beside LoRA and VoP;
* ``rounds`` -- speed ratios that hold on a shared machine: functions timed in turn, round
  after round, judged on the median of the rounds' ratios;
* ``lora`` -- clipadapt's LoRA beside peft's (``--lora``);
* ``video`` -- decoding throughput and each VoP variant's multiply-adds (``--video``);
* ``costmap`` -- chapter 8's map: every method of Parts I and II as its chapter ran it (its
  seeds and budget), its costs and quality, the Pareto front, the papers' cited numbers and
  a guide read off the map that names a winner only where every seed agrees;
* ``t4`` -- every chapter's ``colab`` runs at full size on the CPU: peak memory and a T4
  estimate each (``--t4``);
* ``dryrun`` -- one run built as a chapter builds it, at full size, for two steps on the CPU:
  its peak memory and whether it fits a T4 (also ``reproduce --dry-run``).
"""
