"""``python -m clipadapt.bench`` (``make bench``): every table, or one with its flag."""

from __future__ import annotations

import argparse
import sys
import tempfile

from .. import profiles
from . import __doc__ as DOC
from . import chapters, costmap, dryrun, lora, t4, tempme, video


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DOC.split("\n")[0])
    parser.add_argument("--notebook", action="append", help="only this chapter (repeatable)")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--skip-chapters", action="store_true")
    parser.add_argument("--lora", action="store_true", help="only compare clipadapt's LoRA with peft's")
    parser.add_argument("--video", action="store_true", help="only decoding throughput and VoP costs")
    parser.add_argument("--tempme", action="store_true", help="only TempMe's cost, speed and memory table")
    parser.add_argument("--map", action="store_true", help="only chapter 8's map of every method's cost and quality")
    parser.add_argument("--runs", default=None, help="with --map: the folder whose run store (FOLDER/runs) holds "
                        "the chapters' runs, e.g. _build/exec/notebooks after a book build (default: run them)")
    parser.add_argument("--t4", action="store_true", help="only the full-size dry run of every chapter's colab runs")
    args = parser.parse_args(argv)
    if args.t4:
        return 0 if t4_table() else 1
    if args.map:
        with tempfile.TemporaryDirectory() as tmp:
            rows = costmap.measure_all(profiles.get(args.profile), workdir=args.runs or tmp)
            print(costmap.format_rows(rows))
        return 0
    if args.tempme:
        return 0 if tempme.run() else 1
    if args.lora:
        lora.bench_lora()
        return 0
    if args.video:
        video.bench_video()
        return 0
    ok = True
    if not args.skip_chapters:
        print(f"{'chapter':<28}{'seconds':>9}{'target':>8}{'peak GB':>9}{'target':>8}  ok")
        for r in chapters.bench_chapters(args.notebook, args.profile):
            good = (r["target_s"] is None or r["seconds"] <= r["target_s"]) and r["peak_gb"] <= chapters.TARGET_PEAK_GB
            ok &= good
            target = f"{r['target_s']}" if r["target_s"] else "-"
            print(f"{r['chapter']:<28}{r['seconds']:>9.1f}{target:>8}{r['peak_gb']:>9.2f}{chapters.TARGET_PEAK_GB:>8.1f}  "
                  f"{'yes' if good else 'NO'}")
        print()
    result = chapters.bench_tiny_clip()
    print(f"{'tiny CLIP (shipped), held-out':<34}{'measured':>10}{'chance':>8}{'target':>8}  ok")
    for attr, acc in result["zero_shot"].items():
        target = 90.0 if attr in ("shape", "colour") else None
        good = target is None or 100 * acc >= target
        ok &= good
        print(f"{'zero-shot ' + attr + ' (%)':<34}{100 * acc:>10.1f}{100 * result['chance'][attr]:>8.1f}"
              f"{(f'{target:.0f}' if target else '-'):>8}  {'-' if target is None else 'yes' if good else 'NO'}")
    for key, kind in (("retrieval", "one object"), ("retrieval_two", "two objects")):
        for direction, m in result[key].items():
            label = f"{kind}, {direction.replace('_', ' ')} R@1 (%)"
            print(f"{label:<34}{m['R@1']:>10.1f}{100 / 200:>8.1f}{'-':>8}  -")
    print(f"{'binding, right over swapped (%)':<34}{100 * result['binding']:>10.1f}{50.0:>8.1f}{'-':>8}  -")
    ok &= tempme.run()
    ok &= t4_table()
    return 0 if ok else 1


def t4_table(profile: str = "colab") -> bool:
    """Every chapter's ``profile`` runs at full size on the CPU, with a T4 estimate each
    (:mod:`clipadapt.bench.dryrun`); True when all fit."""
    print(f"\nFull-size dry run of the {profile} profile (two training steps and one evaluation batch "
          "per run, on the CPU):")
    rows = t4.chapter_table(profiles.get(profile), say=lambda line: None)
    print(dryrun.format_rows(rows))
    return all(m.fits for _, m in rows)


if __name__ == "__main__":
    sys.exit(main())
