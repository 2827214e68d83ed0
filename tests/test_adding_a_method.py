"""Adding a method is its module and its recipe file, nothing else (book/library.md walks
through exactly this): in a copy of the package, a toy method's two files are dropped in,
and both ``python -m clipadapt.reproduce`` and ``driver.run`` train it, to the same numbers."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import clipadapt

PACKAGE = Path(clipadapt.__file__).parent

# the method's module: zero-shot CLIP plus a learned bias per class (C numbers)
MODULE = '''
"""Class bias: the zero-shot classifier plus one learned number per class."""

import torch
from torch import nn

from ..core import features, models
from ..data import names
from .protocol import Method
from .spec import MethodSpec, register


class ClassBias(Method):
    frozen_image_encoder = True  # the task stores the image features once

    def __init__(self, clip, tokenizer, classnames, template, scale=1.0):
        super().__init__()
        self.clip = models.freeze(clip)
        with torch.no_grad():
            cls = features.encode_texts(clip, tokenizer, names.prompts(template, classnames))
        self.register_buffer("class_features", cls, persistent=False)  # (C, D)
        self.bias = nn.Parameter(torch.zeros(len(classnames), device=cls.device))  # (C,)
        self.scale = scale

    def encode_image(self, images):
        return features.encode_images(self.clip, images)  # (B, D), normalised

    def logits_from_features(self, feats):
        zero_shot = features.scaled_cosine(feats, self.class_features, self.clip)  # (B, C)
        return zero_shot + self.scale * self.bias

    def forward(self, images):
        return self.logits_from_features(self.encode_image(images))


def _build(clip, tokenizer, context, options, variant):
    return ClassBias(clip, tokenizer, context["classnames"], context["template"], **options)


register(MethodSpec("class bias", "classification", _build, "one learned bias per class"))
'''

# its recipe file: the "official" row (a made-up paper), and each profile's row
RECIPE = '''
method = "class bias"
backbone = "ViT-B/32"

[official]
source = "a toy method of tests/test_adding_a_method.py"

[official.optimizer]
optimizer = "adamw"

[official.lr]
lr = 0.01

[official.budget]
steps = 20

[official.options.scale]
value = 1.0

[tiny.lr]
lr = 0.05

[tiny.budget]
steps = 12

[tiny.options.scale]
value = 2.0

[colab.precision]
precision = "amp"
reason = "mixed precision on a T4"

[paper]
'''

SCRIPT = '''
import json, sys
from clipadapt import experiments, profiles, reproduce
from clipadapt.core import models
from clipadapt.training import driver, recipes

out = sys.argv[1]
assert reproduce.main(["class-bias", "--profile", "tiny", "--out", out, "--workdir", out, "--no-progress"]) == 0
command = json.load(open(out + "/result.json"))
clip, preprocess, tokenizer = models.load_clip("tiny-clip", "synthetic")
tiny = profiles.get("tiny")
bench = experiments.Workbench(tiny, clip, preprocess, tokenizer, workdir=out)
spec = experiments.default("class bias").under(tiny)  # what the METHOD form runs
task = bench.task(spec, 0, bench.points(spec)[-1].get("shots"))
chapter = driver.run("class bias", clip, tokenizer, task, profile=tiny, seed=0)
print(json.dumps({"command": command, "chapter": {"metrics": chapter.metrics, "trainable": chapter.trainable,
                  "steps": chapter.steps, "lr": chapter.recipe.lr},
                  "card": recipes.card("class bias", profiles.get("tiny"))}))
'''


def test_a_new_method_is_its_module_and_its_recipe_file(tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(PACKAGE, lib / "clipadapt", ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "clipadapt" / "methods" / "class_bias.py").write_text(textwrap.dedent(MODULE))
    (lib / "clipadapt" / "recipes" / "class-bias.toml").write_text(textwrap.dedent(RECIPE))
    env = {**os.environ, "PYTHONPATH": str(lib), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    command, chapter = out["command"], out["chapter"]
    assert command["metrics"] == chapter["metrics"]  # the same run, bit for bit
    assert command["steps"] == chapter["steps"] == 12 and chapter["lr"] == 0.05
    assert command["trainable"] == chapter["trainable"] == 5  # one bias per class of the few-shot world
    assert "class bias" in out["card"] and "0.05" in out["card"]
    # the source tree itself is untouched
    assert not (PACKAGE / "methods" / "class_bias.py").exists()
