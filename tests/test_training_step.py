"""Tests of the training step (issue 11): the flat-buffer Adadelta against
``torch.optim.Adadelta`` over real steps, its state through checkpoints, the compiled step,
the per-epoch posterior-mean test BCE and the run summary, the injected loss hook, the
explicit mean pose, and the batched importance weights against the one-draw-at-a-time loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tvae import Config, TrainingError
from tvae.models import build_model, log_normal
from tvae.optim import (
    EAGER_CHUNK,
    FlatAdadelta,
    FlatParameters,
    adadelta_update,
    compiled_adadelta_update,
)
from tvae.step import compile_unavailable
from tvae.train import (
    mean_pose,
    nan_loss_at,
    posterior_mean_bce,
    read_checkpoint,
    run_summary,
    set_mean_pose,
    train,
)

NO_COMPILE = compile_unavailable(torch.device("cpu"))


def small(model: str = "tps-tvae", **kw) -> Config:
    base = dict(model=model, zdim=4, hidden=(64, 64), loc_hidden=(32,), train_size=300, epochs=2,
                batch_size=50, optimizer="adadelta", seed=0)
    base.update(kw)
    return Config(**base)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ------------------------------------------------------------------ the optimiser ----
@pytest.mark.parametrize("model,prior", [("vae", "flat"), ("tps-tvae", "flat"),
                                         ("affine-tvae", "lowrank")])
def test_flat_adadelta_equals_torch_adadelta_over_real_steps(digits, model, prior):
    """Twenty real steps (same model, same data, same noise): the flat eager update gives the
    weights of ``torch.optim.Adadelta`` with Lasagne's settings to the last bit."""
    cfg = small(model, prior=prior, rank=2 if prior == "lowrank" else None)
    ref, mine = build_model(cfg), build_model(cfg)
    mine.load_state_dict(ref.state_dict())
    opt_ref = torch.optim.Adadelta(ref.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    flat = FlatParameters(mine)
    opt = FlatAdadelta(flat)
    assert flat.param.numel() > 2 * EAGER_CHUNK                  # several chunks on the CPU
    g_ref, g_mine = gen(1), gen(1)
    for i in range(20):
        x = digits[(i * 50) % 250:(i * 50) % 250 + 50]
        loss_ref = ref.loss(x, g_ref)
        opt_ref.zero_grad(set_to_none=True)
        loss_ref.backward()
        opt_ref.step()
        flat.zero_grad()
        loss = mine.loss(x, g_mine)
        loss.backward()
        opt.step()
        assert loss.item() == loss_ref.item()
    assert torch.equal(flat_params(mine), flat_params(ref))
    assert torch.equal(flat.param, flat_params(ref))             # the views are the model's
    for p_ref in opt_ref.state.values():
        assert p_ref["step"] == 20
    sq = torch.cat([opt_ref.state[p]["square_avg"].reshape(-1) for p in ref.parameters()])
    assert torch.equal(opt.square_avg, sq)


@pytest.mark.skipif(NO_COMPILE is not None, reason=f"torch.compile unavailable: {NO_COMPILE}")
def test_compiled_update_agrees_with_torch_adadelta_to_1e6(digits):
    """At each of ten real steps of ``torch.optim.Adadelta``, the compiled one-pass update
    from the same state and gradient gives the same running averages and the same step to
    1e-6 relative (it rounds differently, so not bitwise)."""
    cfg = small("tps-tvae")
    model = build_model(cfg)
    opt_ref = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    update = compiled_adadelta_update("cpu")
    params = list(model.parameters())
    g = gen(2)
    for i in range(10):
        x = digits[i * 25:i * 25 + 50]
        opt_ref.zero_grad(set_to_none=True)
        model.loss(x, g).backward()
        if i:
            sq = torch.cat([opt_ref.state[p]["square_avg"].reshape(-1) for p in params])
            acc = torch.cat([opt_ref.state[p]["acc_delta"].reshape(-1) for p in params])
        else:
            sq = torch.zeros(sum(p.numel() for p in params))
            acc = torch.zeros_like(sq)
        p0 = flat_params(model).clone()
        grad = torch.cat([p.grad.reshape(-1) for p in params])
        p1, sq1, acc1 = p0.clone(), sq.clone(), acc.clone()
        update(p1, grad, sq1, acc1, 1.0, 0.95, 1e-6)
        opt_ref.step()
        ref_p = flat_params(model)
        ref_sq = torch.cat([opt_ref.state[p]["square_avg"].reshape(-1) for p in params])
        ref_acc = torch.cat([opt_ref.state[p]["acc_delta"].reshape(-1) for p in params])
        torch.testing.assert_close(sq1, ref_sq, rtol=1e-6, atol=0)
        torch.testing.assert_close(acc1, ref_acc, rtol=1e-6, atol=0)
        # the step taken, to 1e-6 of its size (plus the rounding of the parameter itself)
        step, ref_step = p1 - p0, ref_p - p0
        tol = 1e-6 * ref_step.abs() + 2 * torch.finfo(torch.float32).eps * p0.abs()
        assert ((step - ref_step).abs() <= tol).all()


def test_adadelta_update_is_the_lasagne_rule():
    """Independent check of the arithmetic, in float64: Lasagne's adadelta."""
    r = np.random.default_rng(0)
    p, g = r.normal(size=100), r.normal(size=100)
    sq, acc = r.random(100), r.random(100) * 1e-3
    rho, eps = 0.95, 1e-6
    sq_new = rho * sq + (1 - rho) * g ** 2
    upd = g * np.sqrt(acc + eps) / np.sqrt(sq_new + eps)
    want = (p - upd, sq_new, rho * acc + (1 - rho) * upd ** 2)
    t = [torch.tensor(a) for a in (p, g, sq, acc)]
    adadelta_update(t[0], t[1], t[2], t[3], 1.0, rho, eps)
    for got, w in zip((t[0], t[2], t[3]), want, strict=True):
        np.testing.assert_allclose(got.numpy(), w, rtol=1e-12)


def test_flat_parameters_keep_the_model_and_refuse_broken_views():
    model = build_model(small("affine-dtvae"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flat = FlatParameters(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert flat.param.numel() == sum(p.numel() for p in model.parameters())
    flat.check_views()
    with torch.no_grad():
        flat.param.add_(1.0)                                      # the model sees the buffer
    assert torch.equal(model.mu_z.bias, before["mu_z.bias"] + 1)
    model.mu_z.bias.grad = None
    with pytest.raises(RuntimeError, match="left the flat buffer"):
        flat.check_views()


def test_adadelta_state_round_trips_through_the_checkpoint(tmp_path, mnist300_short):
    """The checkpoint holds the two running averages; loading them into a fresh run and
    continuing gives the uninterrupted run's weights (the resume test of test_train does it
    end to end; here the state itself)."""
    cfg = small("vae", epochs=1)
    out = tmp_path / "m.pt"
    res = train(cfg, mnist300_short, out=out, progress=False)
    state = read_checkpoint(out)["optimizer"]
    assert state["kind"] == "flat-adadelta" and state["steps"] == 6
    n = sum(p.numel() for p in res.model.parameters())
    assert state["state"]["square_avg"].shape == (n,) and (state["state"]["square_avg"] > 0).any()
    model = build_model(cfg)
    opt = FlatAdadelta(FlatParameters(model))
    opt.load_state_dict(state)
    assert torch.equal(opt.acc_delta, state["state"]["acc_delta"]) and opt.steps == 6
    with pytest.raises(ValueError, match="parameters"):
        FlatAdadelta(FlatParameters(build_model(cfg.replace(zdim=5)))).load_state_dict(state)


# -------------------------------------------------------------- the compiled step ----
@pytest.mark.skipif(NO_COMPILE is not None, reason=f"torch.compile unavailable: {NO_COMPILE}")
def test_compiled_step_trains_close_to_the_eager_step_and_says_so(tmp_path, mnist300_short):
    cfg = small("vae", epochs=1, batch_size=100)
    eager = train(cfg, mnist300_short, progress=False, compile=False)
    out = tmp_path / "c.pt"
    comp = train(cfg, mnist300_short, out=out, progress=False, compile=True)
    assert eager.step_modes == ["eager"] and comp.step_modes == ["compiled"]
    assert read_checkpoint(out)["step_modes"] == ["compiled"]
    a, b = flat_params(eager.model), flat_params(comp.model)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)             # three steps, other rounding
    assert comp.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], rel=1e-5)
    again = train(cfg, mnist300_short, progress=False, compile=True)   # compiled: deterministic
    assert torch.equal(flat_params(again.model), b)


def test_compile_setting_from_the_environment(monkeypatch):
    from tvae.errors import ConfigError
    from tvae.step import use_compile

    cpu = torch.device("cpu")
    monkeypatch.setenv("TVAE_COMPILE", "0")
    assert use_compile(cpu) is False
    monkeypatch.setenv("TVAE_COMPILE", "auto")
    assert use_compile(cpu) is False                             # off by default on the CPU
    assert use_compile(cpu, False) is False
    monkeypatch.setenv("TVAE_COMPILE", "yes")
    with pytest.raises(ConfigError, match="TVAE_COMPILE must be 0, 1 or auto"):
        use_compile(cpu)


# ------------------------------------------------- per-epoch metric and summary ----
def test_posterior_mean_bce_every_epoch_and_in_the_summary(tmp_path, mnist300_short):
    cfg = small("affine-dtvae", epochs=3)
    out = tmp_path / "m.pt"
    res = train(cfg, mnist300_short, out=out, progress=False)
    values = [row["test_bce_mean"] for row in res.history]
    assert len(values) == 3 and all(math.isfinite(v) and v > 0 for v in values)
    # independent computation, float64 numpy, on the final model
    x = mnist300_short.x_test
    with torch.no_grad():
        post = res.model.encode(x)
        rec = res.model.decode(post.mu_z, post.u).double().numpy()
    p = np.clip(rec, 1e-6, 1 - 1e-6)
    xn = x.double().numpy()
    want = float(-(xn * np.log(p) + (1 - xn) * np.log(1 - p)).sum(1).mean())
    assert values[-1] == pytest.approx(want, rel=1e-5)
    assert posterior_mean_bce(res.model, x, batch_size=77) == pytest.approx(want, rel=1e-5)
    s = res.summary
    best = int(np.argmin(values))
    assert s == {"test_bce_mean_last": values[-1], "test_bce_mean_min": values[best],
                 "test_bce_mean_min_epoch": best + 1}
    assert read_checkpoint(out)["summary"] == s
    rows = [{"epoch": 1, "test_bce_mean": 5.0}, {"epoch": 2, "test_bce_mean": 3.0},
            {"epoch": 3, "test_bce_mean": 3.0}, {"epoch": 4, "test_bce_mean": 4.0}]
    assert run_summary(rows) == {"test_bce_mean_last": 4.0, "test_bce_mean_min": 3.0,
                                 "test_bce_mean_min_epoch": 2}
    assert run_summary([]) == {}


def test_loss_hook_is_injected_not_built_in(mnist300_short):
    seen = []

    def hook(epoch, batch, loss):
        seen.append((epoch, batch))
        return loss

    train(small("vae", epochs=2), mnist300_short, progress=False, loss_hook=hook)
    assert seen == [(e, b) for e in (1, 2) for b in range(1, 7)]
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 1, batch 4"):
        train(small("vae"), mnist300_short, progress=False, loss_hook=nan_loss_at(1, 4))


# ------------------------------------------------------------------ the mean pose ----
def test_mean_pose_is_explicit(mnist300_short):
    res = train(small("tps-tvae", epochs=1), mnist300_short, progress=False)
    m = res.model
    z = torch.randn(3, 4, generator=gen(0))
    with pytest.raises(ValueError, match="decode_at_mean_pose"):
        m.decode(z)
    assert torch.equal(m.decode_at_mean_pose(z), m.decode(z, m.u_mean.expand(3, -1)))
    assert torch.allclose(m.u_mean, mean_pose(m, mnist300_short.x_train), atol=1e-6)
    with torch.no_grad():
        m.u_mean.zero_()
    set_mean_pose(m, mnist300_short.x_train)
    assert torch.allclose(m.u_mean, mean_pose(m, mnist300_short.x_train))
    vae = build_model(small("vae"))
    assert torch.equal(vae.decode_at_mean_pose(z), vae.decode_upright(z))


# ---------------------------------------------------------- batched importance weights ----
def reference_log_weights(m, x, k, generator):
    """The pre-batching implementation: one posterior draw at a time."""
    post = m.encode(x)
    out = []
    for _ in range(k):
        z, u, code = m.sample_latents(post, generator)
        lw = (m.likelihood_term(x, m.decode(z, u))
              + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
              - log_normal(z, post.mu_z, post.logsigma_z))
        if code is not None:
            lw = lw + (log_normal(code, torch.zeros_like(code), torch.zeros_like(code))
                       - log_normal(code, post.mu_u, post.logsigma_u))
        out.append(lw)
    return torch.stack(out, 1)


@pytest.mark.parametrize("model,prior,likelihood", [
    ("vae", "flat", "bernoulli"), ("tps-tvae", "flat", "bernoulli"),
    ("affine-dtvae", "flat", "continuous-bernoulli"), ("tps-dtvae", "flat", "bernoulli"),
    ("affine-tvae", "mean-diag", "bernoulli"), ("tps-tvae", "lowrank", "bernoulli")])
def test_batched_log_weights_match_the_one_draw_loop(digits, model, prior, likelihood):
    cfg = small(model, prior=prior, rank=3 if prior == "lowrank" else None, likelihood=likelihood)
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    with torch.no_grad():                      # move the pose heads off their zero start
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen(9)))
        x = digits[:13]
        ref = reference_log_weights(m, x, 7, gen(4))
        got = m.log_weights(x, 7, gen(4), chunk_rows=30)          # chunks of 2 draws
        whole = m.log_weights(x, 7, gen(4))
    assert got.shape == (13, 7)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(whole, ref, rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """250 real-looking grey digits: the first training digits of MNIST when present, else
    smooth random blobs (the arithmetic under test does not depend on which)."""
    import os
    from pathlib import Path

    from tvae.data import load_dataset
    from tvae.rawdata import raw_paths

    root = Path(os.environ.get("TVAE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if all(p.is_file() for p in raw_paths("mnist", root)):
        return load_dataset("mnist", root, train_size=300, seed=0).x_train[:250]
    blobs = torch.rand(250, 1, 7, 7, generator=gen(0))
    return torch.nn.functional.interpolate(blobs, size=(28, 28), mode="bilinear").reshape(250, 784)
