"""Checkpoint loading: one error line for weights that do not fit, and for unknown config fields
(``tvae.io.load_weights``, ``tvae.config.check_fields``, used by models and the classifier)."""

from __future__ import annotations

import pytest
import torch

from tvae.classifier import Classifier, ClassifierConfig, load_classifier
from tvae.config import Config
from tvae.errors import CheckpointError, ConfigError
from tvae.io import FORMAT_VERSION, load_weights, save_checkpoint
from tvae.models import build_model
from tvae.train import load_model


def _model_checkpoint(tmp_path, state_edit=None):
    cfg = Config(model="vae", zdim=4, hidden=(16,))
    state = build_model(cfg).state_dict()
    if state_edit:
        state_edit(state)
    path = tmp_path / "vae.pt"
    save_checkpoint(path, {"format_version": FORMAT_VERSION, "config": cfg.to_dict(), "model": state})
    return path


def test_load_model_round_trip_is_in_eval_mode(tmp_path):
    path = _model_checkpoint(tmp_path)
    model, state = load_model(path)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])


@pytest.mark.parametrize("edit, cause", [
    (lambda s: s.pop(next(iter(s))), "RuntimeError: Error(s) in loading state_dict"),
    (lambda s: s.update({k: torch.zeros(3) for k in list(s)[:1]}), "size mismatch"),
])
def test_load_model_mismatch_is_one_line_with_cause_and_fix(tmp_path, edit, cause):
    path = _model_checkpoint(tmp_path, edit)
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"checkpoint {path} does not match the vae model of this tvae (")
    assert cause in msg and msg.endswith("); retrain it")


def test_load_weights_without_weights_names_the_key():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match=r"^thing does not fit \(KeyError: 'model'\); fix it$"):
        load_weights(net, {}, "thing does not fit; fix it")
    net.train()
    assert load_weights(net, {"model": net.state_dict()}, "x; y") is net and not net.training


def test_classifier_checkpoint_mismatch(tmp_path):
    cfg = ClassifierConfig(train_size=10, epochs=1)
    state = Classifier(cfg).state_dict()
    state.pop(next(iter(state)))
    path = tmp_path / "clf.pt"
    save_checkpoint(path, {"format_version": FORMAT_VERSION, "kind": "classifier",
                           "config": cfg.to_dict(), "model": state})
    with pytest.raises(CheckpointError, match=r"does not match this tvae's classifier \(RuntimeError: "
                                              r".*\); delete it to retrain$"):
        load_classifier(path)


@pytest.mark.parametrize("cls, what", [(Config, "config"), (ClassifierConfig, "classifier config")])
def test_unknown_config_fields_are_refused(cls, what):
    d = {**cls().to_dict(), "colour": "red"}
    with pytest.raises(ConfigError, match=rf"^unknown {what} field\(s\) \['colour'\]; known fields: \["):
        cls.from_dict(d)
    assert cls.from_dict(cls().to_dict()) == cls()
