"""v1rsa.training: the optimiser that every training loop uses."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from v1rsa import training


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.9, 0.1)])
def test_sgd_takes_the_steps_of_torch_optim_sgd(momentum, weight_decay):
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(7, 5, generator=generator), torch.randn(5, generator=generator),
             torch.randn(3, generator=generator)]
    gradients = [[torch.randn(p.shape, generator=generator) for p in start] for _ in range(4)]
    runs = {}
    for name, make in (("v1rsa", training.SGD), ("torch", torch.optim.SGD)):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = make(params, lr=0.3, momentum=momentum, weight_decay=weight_decay)
        for step, grads in enumerate(gradients):
            optimizer.zero_grad()
            for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
                if not (index == 2 and step < 2):  # the last one has no gradient at first
                    param.grad = grad.clone()
            optimizer.step()
        runs[name] = params
    for ours, theirs in zip(runs["v1rsa"], runs["torch"], strict=True):
        assert torch.equal(ours, theirs)
    assert not torch.equal(runs["v1rsa"][0], start[0])
    with pytest.raises(ValueError, match="lr > 0"):
        training.SGD(runs["v1rsa"], lr=0.0)


def test_training_does_not_import_torch_dynamo():
    """torch.optim imports torch._dynamo on first use, about a second of every job's start-up."""
    code = ("import sys, numpy as np; from v1rsa import decoders; "
            "x = np.random.default_rng(0).normal(size=(40, 8)).astype('float32'); "
            "model = decoders.build_decoder('regressor', 8); "
            "decoders.train_decoder(model, x, np.linspace(0, 350, 40), kind='regressor', lr=1e-3, "
            "n_iterations=2, batch_size=16, seed=0, device='cpu', progress=False); "
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_saved_weights_are_the_same_bytes_whatever_the_file(tmp_path):
    """A rerun that learns the same weights writes the same file (no temporary name inside)."""
    model = torch.nn.Linear(4, 3)
    paths = [tmp_path / "a" / "model.pt", tmp_path / "b" / "weights.pt"]
    for path in paths:
        path.parent.mkdir()
        training.save_state_dict(model, path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    loaded = training.load_state_dict(torch.nn.Linear(4, 3), paths[1])
    assert torch.equal(loaded.weight, model.weight) and torch.equal(loaded.bias, model.bias)


class Pickled(torch.nn.Linear):
    """A module class of the test's own: torch.load(weights_only=True) refuses to build it."""


def test_a_file_that_is_not_only_weights_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(Pickled(4, 3), path)

    with pytest.raises(ValueError) as caught:
        training.load_state_dict(torch.nn.Linear(4, 3), path)

    message = str(caught.value)
    assert message.startswith(f"{path}: refused: the file holds Python objects other than tensors")
    assert "Pickled" in message and "torch.save(model.state_dict(), path)" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "weights_only" not in message and "False" not in message
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="text.pt: not a file written by torch.save"):
        training.read_state_dict(tmp_path / "text.pt")
