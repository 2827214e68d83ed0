"""The run store (clipadapt.experiments.store): a run is filed under a key that changes with
anything it depends on, reads back bit for bit, and a file that cannot be read is made again."""

import dataclasses
import json

from clipadapt import experiments, profiles
from clipadapt.experiments import store
from clipadapt.training import driver
from clipadapt.training.loop import History


def _result(recipe):
    history = History(loss=[2.0, 1.0 / 3.0], lr=[1e-3, 5e-4], seconds=0.25, evaluations={2: {"R@1": 0.1 + 0.2}})
    return driver.Result("CoOp", None, {"accuracy": 0.578000009059906, "nan": float("nan")}, 2048, 12345, 1.5,
                         0.25, 2, recipe, history, peak_bytes=7)


def test_a_filed_run_reads_back_bit_for_bit(tmp_path):
    spec = experiments.get("ch02/coop", profiles.get("tiny"))
    recipe = experiments.recipe_of(spec, profiles.get("tiny"))
    runs = store.Store(tmp_path)
    assert runs.get(spec, {"seed": 0, "shots": 2}, recipe) is None
    path = runs.put(spec, {"seed": 0, "shots": 2}, recipe, _result(recipe))
    back = runs.get(spec, {"seed": 0, "shots": 2}, recipe)
    assert json.dumps(store.to_json(back)) == json.dumps(store.to_json(_result(recipe)))
    assert back.history.evaluations == {2: {"R@1": 0.1 + 0.2}} and back.recipe is recipe and back.module is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing half-written beside it
    # another point, another recipe, another spec: not found
    assert runs.get(spec, {"seed": 1, "shots": 2}, recipe) is None
    assert runs.get(spec, {"seed": 0, "shots": 2}, recipe.replace(lr=recipe.lr * 2)) is None
    assert runs.get(dataclasses.replace(spec, seeds=(0,)), {"seed": 0, "shots": 2}, recipe) is None
    assert runs.get(spec, {"seed": 0, "shots": 2}, recipe, data_root="/elsewhere") is None
    # a file that cannot be read is a run not filed
    path.write_text("{not json")
    assert runs.get(spec, {"seed": 0, "shots": 2}, recipe) is None


def test_the_key_follows_every_file_of_the_library(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "weights.bin").write_bytes(b"\0\1")
    first = store.code_fingerprint(tmp_path)
    assert store.code_fingerprint(tmp_path) == first
    (tmp_path / "w" / "weights.bin").write_bytes(b"\0\2")
    assert store.code_fingerprint(tmp_path) != first
    second = store.code_fingerprint(tmp_path)
    (tmp_path / "bench").mkdir()  # the benchmarks and the book's tooling are no run's input
    (tmp_path / "bench" / "costmap.py").write_text("y = 2\n")
    (tmp_path / "viz.py").write_text("z = 3\n")
    assert store.code_fingerprint(tmp_path) == second
    spec = experiments.get("ch02/coop", profiles.get("tiny"))
    recipe = experiments.recipe_of(spec, profiles.get("tiny"))
    key = store.key(spec, {"seed": 0}, recipe)
    monkeypatch.setattr(store, "_CODE", "another library")
    assert store.key(spec, {"seed": 0}, recipe) != key
