"""Loading a learner runs no code from the file unless the caller trusts it."""

import base64
import json
import zipfile

import cloudpickle
import numpy as np
import pytest
import torch as th
from sb3_contracts.envs import random_binary_tree

from sb3_contracts import ContractDQN, MultiAgentContractDQN, PrincipalVecEnv
from sb3_contracts.common.safe_load import SAFE_KEY, resolve_class

th.set_num_threads(1)


class _Payload:
    """Unpickling this writes a file: the proof that a load ran the file's code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _tree_model(**kwargs):
    return ContractDQN("MlpPolicy", PrincipalVecEnv(random_binary_tree(3, 0), n_envs=2), learning_starts=10, **kwargs)


def _rewrite_data(path, edit):
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    edit(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


@pytest.mark.parametrize("learner", ["tree", "coin"])
def test_the_learners_own_files_load_without_unpickling(tmp_path, learner, monkeypatch):
    if learner == "tree":
        model = _tree_model(learning_rate_final=1e-4)
        obs = np.eye(15, dtype=np.float32)
    else:
        model = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=2, learning_rate_final=1e-4)
        obs = model.env.reset()
    model.save(tmp_path / "model.zip")
    monkeypatch.setattr(cloudpickle, "loads", lambda *args: pytest.fail("load unpickled an entry"))
    loaded = type(model).load(tmp_path / "model.zip")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    assert loaded.lr_schedule(0.5) == pytest.approx(model.lr_schedule(0.5))
    assert loaded.policy_kwargs == model.policy_kwargs and SAFE_KEY not in loaded.__dict__


def test_a_crafted_file_is_refused_and_runs_nothing(tmp_path):
    model = _tree_model()
    model.save(tmp_path / "model.zip")
    marker = tmp_path / "pwned"
    payload = base64.b64encode(cloudpickle.dumps(_Payload(str(marker)))).decode()

    def inject(data):
        data["gamma"] = {":type:": "<class 'float'>", ":serialized:": payload}

    _rewrite_data(tmp_path / "model.zip", inject)
    with pytest.raises(ValueError, match=r"pickled entries \['gamma'\].*trusted=True"):
        ContractDQN.load(tmp_path / "model.zip")
    assert not marker.exists()
    # the caller's choice: trusting the file unpickles it, and its code runs
    ContractDQN.load(tmp_path / "model.zip", trusted=True)
    assert marker.exists()


def test_a_file_of_the_other_learner_or_not_a_model_gets_a_clear_error(tmp_path):
    _tree_model().save(tmp_path / "tree.zip")
    with pytest.raises(ValueError, match="holds a ContractDQN, not a MultiAgentContractDQN"):
        MultiAgentContractDQN.load(tmp_path / "tree.zip")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an SB3 model file"):
        ContractDQN.load(tmp_path / "junk.zip")
    with pytest.raises(FileNotFoundError, match="no saved model"):
        ContractDQN.load(tmp_path / "missing.zip")


def test_classes_are_resolved_from_trusted_packages_only():
    assert resolve_class("torch.nn.modules.activation:ReLU") is th.nn.ReLU
    with pytest.raises(ValueError, match="outside the trusted packages"):
        resolve_class("os:system")
    with pytest.raises(ValueError, match="outside the trusted packages"):
        resolve_class("torch.nnx:Module")


def test_a_learning_rate_only_pickling_can_save_needs_trust(tmp_path):
    _tree_model(learning_rate=lambda progress: 1e-3).save(tmp_path / "model.zip")
    with pytest.raises(ValueError, match="learning_rate"):
        ContractDQN.load(tmp_path / "model.zip")
    assert ContractDQN.load(tmp_path / "model.zip", trusted=True).learning_rate(0.5) == 1e-3
