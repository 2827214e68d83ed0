"""The moving-average decay (clipadapt.core.ema): SCPNet's official rule, defined once and
read by both the method and the recipes."""

import math

import pytest

from clipadapt.core import ema
from clipadapt.methods import scpnet
from clipadapt.training import recipes


def test_one_definition_for_the_method_and_the_recipes():
    assert scpnet.ema_decay is ema.ema_decay and recipes.ema_decay is ema.ema_decay


def test_the_average_keeps_keep_after_an_epoch():
    for steps, keep in ((1, 0.82), (13, 0.82), (100, 0.5), (79, 0.9)):
        assert math.isclose(ema.ema_decay(steps, keep) ** steps, keep, rel_tol=1e-12)
    assert ema.ema_decay(0) == ema.ema_decay(1) == 0.82  # fewer than one step counts as one


@pytest.mark.parametrize("keep", [0.0, 1.0, 1.5, -0.2])
def test_a_keep_outside_0_1_is_named(keep):
    with pytest.raises(ValueError, match=f"got {keep!r}"):
        ema.ema_decay(10, keep)
