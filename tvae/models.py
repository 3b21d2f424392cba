"""The models: VAE, transformer VAE (affine or TPS) and double transformer VAE.

Notation (the paper's): ``x`` input, ``x'`` reconstruction, ``y`` upright input, ``y'`` upright
reconstruction, ``z`` shape code, ``u`` pose (warp parameters), ``u'`` pose code.
Images are flat ``(B, 784)`` tensors of grey levels in ``[0, 1]``; all terms are per-sample
nats, summed over pixels / latent dimensions.

- :class:`VAE`: ``x -> (mu_z, log sigma_z) -> z -> x'``.
- :class:`TVAE`: one encoder trunk with heads for ``z`` and ``u``; the decoder draws ``y'``
  from ``z`` and a spatial transformer warps it by ``u``: ``x' = T_u(y')``.
- :class:`DTVAE`: a localisation net regresses ``u`` from ``x``; ``y = T_u(x)`` (the mode of
  ``q(u|x)``) is encoded by a plain VAE into ``z``; its output ``y'`` is warped back by the
  inverse transform: ``x' = T_u^{-1}(y')``.

Build any of them from a :class:`tvae.config.Config` with :func:`build_model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import Config
from .priors import PoseHead, bounded_logsigma, kl_std_normal, log_normal, make_pose_head
from .warps import make_warp

H = W = 28
D = H * W
PIXEL_EPS = 1e-6
"""Decoder outputs are clipped to ``[1e-6, 1 - 1e-6]`` (the paper's clipping)."""

LOG_WEIGHT_ROWS = 8192
"""Decoded images per chunk of :meth:`VAE.log_weights_from_noise`: large enough that the
decoder's products are efficient, small enough (25 MB per 784-wide float32 tensor) that the
elementwise likelihood stays in cache-friendly sizes and memory stays bounded for any ``k``."""


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Dense ReLU layers ``sizes[0] -> sizes[1] -> ...``, a ReLU after every layer."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


def log_bernoulli(x: Tensor, p: Tensor) -> Tensor:
    """``sum_pixels x log p + (1 - x) log(1 - p)`` with grey targets: ``(B, D) -> (B,)``.

    ``log(1 - p)``, not ``log1p(-p)``: with ``p`` clipped to ``[1e-6, 1 - 1e-6]`` the two differ
    by at most ~6e-8 nats a pixel (``1 - p`` is exact for ``p >= 1/2``), while torch's CPU
    ``log1p`` is not vectorised: 5.5x the time of ``log`` on a (100, 784) batch (2.67 ms
    against 0.49 ms, measured on the project's CPU), a tenth of a VAE training step."""
    p = p.clamp(PIXEL_EPS, 1 - PIXEL_EPS)
    return (x * p.log() + (1 - x) * torch.log(1 - p)).sum(-1)


def log_cb_normaliser(p: Tensor) -> Tensor:
    """Log normaliser ``log C(p)`` of the continuous Bernoulli, elementwise (stable near 1/2).

    Loaiza-Ganem & Cunningham, *The continuous Bernoulli: fixing a pervasive error in
    variational autoencoders* (NeurIPS 2019): ``C(p) = 2 atanh(1 - 2p) / (1 - 2p)`` for
    ``p != 1/2`` and ``C(1/2) = 2``. Near ``p = 1/2`` (``|p - 1/2| <= 0.01``), where the ratio
    is 0/0 in floating point, its Taylor series in ``t = (1 - 2p)^2`` (the paper also expands
    around 1/2 there): ``atanh(x)/x = 1 + x^2/3 + x^4/5 + ...`` gives
    ``log C = log 2 + t/3 + (1/5 - 1/18) t^2 + O(t^3)``."""
    p = p.clamp(PIXEL_EPS, 1 - PIXEL_EPS)
    far = (p - 0.5).abs() > 1e-2
    safe = torch.where(far, p, torch.full_like(p, 0.25))
    exact = torch.log(2 * torch.atanh(1 - 2 * safe) / (1 - 2 * safe))
    t = (1 - 2 * p) ** 2
    taylor = math.log(2.0) + t / 3 + t * t * (1 / 5 - 1 / 18)
    return torch.where(far, exact, taylor)


@dataclass
class Posterior:
    """Parameters of ``q(z, u'|x)`` for a batch.

    ``mu_z``, ``logsigma_z``: ``(B, dim z)``. ``mu_u``: ``(B, dim u')`` pose-code mean (the
    point itself under the flat prior); ``logsigma_u``: ``(B, dim u')`` or ``None`` (flat).
    ``u``: ``(B, dim u)`` warp parameters at the posterior mode. ``y``: the upright input
    ``T_u(x)`` for the DTVAE, else ``None``. Non-pose models have empty ``(B, 0)`` pose tensors.
    """

    mu_z: Tensor
    logsigma_z: Tensor
    mu_u: Tensor
    logsigma_u: Tensor | None
    u: Tensor
    y: Tensor | None = None


class VAE(nn.Module):
    """The plain variational autoencoder (and the base class of the transformer models)."""

    has_pose = False

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        c = config
        self.trunk = mlp((D, *c.hidden))
        self.mu_z = nn.Linear(c.hidden[-1], c.zdim)
        self.logsigma_z = nn.Linear(c.hidden[-1], c.zdim)
        self.decoder = nn.Sequential(mlp((c.zdim, *c.hidden)), nn.Linear(c.hidden[-1], D))
        self.pose: PoseHead | None = None
        self.warp = None

    # -------------------------------------------------------------------- encoder ----
    def _z_posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu_z(h), bounded_logsigma(self.logsigma_z(h))

    def encode(self, x: Tensor) -> Posterior:
        """Posterior parameters for ``x`` ``(B, 784)``."""
        mu, ls = self._z_posterior(self.trunk(x))
        empty = x.new_zeros(x.shape[0], 0)
        return Posterior(mu, ls, empty, None, empty)

    # -------------------------------------------------------------------- decoder ----
    def decode_upright(self, z: Tensor) -> Tensor:
        """Upright image ``y'`` ``(B, 784)`` in ``(0, 1)`` from codes ``z`` ``(B, dim z)``."""
        return torch.sigmoid(self.decoder(z))

    def decode(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """Reconstruction ``x'`` ``(B, 784)`` from ``z`` and warp parameters ``u`` (the plain
        VAE has no pose and ignores ``u``; pose models require it)."""
        return self.decode_upright(z)

    def decode_at_mean_pose(self, z: Tensor) -> Tensor:
        """``x'`` from ``z`` with every pose at the training-set mean pose ``u_mean`` (pose
        models; the plain VAE's ``x' = y'``)."""
        return self.decode_upright(z)

    # -------------------------------------------------------------------- sampling ----
    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | None = None) -> tuple[Tensor, Tensor | None]:
        """The reparametrisation noise of one posterior draw for ``batch`` inputs: ``eps_z``
        ``(B, dim z)`` then, under a Gaussian pose prior, ``eps_u`` ``(B, dim u')`` (else
        ``None``), standard normal, drawn in that order from ``generator`` (the global stream
        when ``None``) on ``device`` (default: the model's)."""
        param = next(self.parameters())
        dev = device if device is not None else param.device
        eps_z = _randn_on((batch, self.config.zdim), generator, dev, param.dtype)
        eps_u = None
        if self.pose is not None and self.pose.stochastic:
            eps_u = _randn_on((batch, self.pose.code_dim), generator, dev, param.dtype)
        return eps_z, eps_u

    def latents(self, post: Posterior, eps_z: Tensor, eps_u: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """The reparametrised draw ``(z, u, u')`` for noise ``eps_z`` (and ``eps_u`` under a
        Gaussian pose prior; ``u'`` is ``None`` under the flat one, where ``u = post.u``).
        Noise of shape ``(k, B, .)`` gives ``k`` draws per input: ``(k, B, .)`` latents."""
        return post.mu_z + post.logsigma_z.exp() * eps_z, post.u, None

    def sample_latents(self, post: Posterior, generator: torch.Generator | None = None
                       ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One reparametrised draw ``(z, u, u')`` from the posterior (``u'`` None if flat)."""
        return self.latents(post, *self.draw_noise(post.mu_z.shape[0], generator, post.mu_z.device))

    def likelihood_term(self, x: Tensor, x_rec: Tensor) -> Tensor:
        """``log p(x | x')`` per sample in nats, ``(B,)``, under the configured likelihood."""
        ll = log_bernoulli(x, x_rec)
        if self.config.likelihood == "continuous-bernoulli":
            ll = ll + log_cb_normaliser(x_rec).sum(-1)
        return ll

    def forward(self, x: Tensor, eps_z: Tensor, eps_u: Tensor | None = None) -> dict[str, Tensor]:
        """Per-sample ELBO terms in nats, each ``(B,)``, for the noise ``eps_z``, ``eps_u`` of
        :meth:`draw_noise` (drawn outside, so that a compiled forward has no random-number
        generator in its graph): ``bce`` (= -log p(x|z,u)), ``kl_z``, ``kl_u`` (0 under the
        flat prior) and ``elbo = -(bce + kl_z + kl_u)``. One sample (L=1)."""
        post = self.encode(x)
        z, u, _ = self.latents(post, eps_z, eps_u)
        bce = -self.likelihood_term(x, self.decode(z, u))
        kl_z = kl_std_normal(post.mu_z, post.logsigma_z)
        kl_u = (kl_std_normal(post.mu_u, post.logsigma_u) if post.logsigma_u is not None
                else torch.zeros_like(kl_z))
        return {"bce": bce, "kl_z": kl_z, "kl_u": kl_u, "elbo": -(bce + kl_z + kl_u)}

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """:meth:`forward` with one posterior draw from ``generator``."""
        return self(x, *self.draw_noise(x.shape[0], generator, x.device))

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The paper's batch loss: mean over the batch of ``bce + kl_z + kl_u``."""
        return batch_loss(self.terms(x, generator))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, pose: str | None = None,
               upright: bool = False) -> Tensor:
        """``n`` generated images ``(n, 784)``: ``z ~ N(0, I)``; ``u`` from its prior
        (``pose='prior'``, Gaussian priors only), the training-set mean (``'mean'``) or the
        identity (``'identity'``). The default is the prior under a Gaussian pose prior and the
        training-set mean under the flat one. ``upright=True`` returns ``y'`` before the warp."""
        dev = next(self.parameters()).device
        z = _randn((n, self.config.zdim), generator, dev)
        if upright or not self.has_pose:
            return self.decode_upright(z)
        if pose is None:
            pose = "prior" if self.pose.stochastic else "mean"
        return self.decode(z, self.sample_pose(n, generator, pose))

    def sample_pose(self, n: int, generator: torch.Generator | None = None,
                    pose: str = "mean") -> Tensor:
        raise ValueError("the plain VAE has no pose")

    # ------------------------------------------------------------ log-likelihood ----
    @torch.no_grad()
    def log_weights(self, x: Tensor, k: int, generator: torch.Generator | None = None,
                    chunk_rows: int = LOG_WEIGHT_ROWS) -> Tensor:
        """Importance log-weights ``log p(x, z, u') - log q(z, u'|x)`` for ``k`` posterior
        draws per sample: ``(B, 784) -> (B, k)``. (Under the flat prior ``u`` is a point and
        only ``z`` is integrated out.)

        The draws are those of ``k`` successive :meth:`draw_noise` calls (draw ``j`` holds
        ``eps_z`` then ``eps_u``); the arithmetic is batched over draws and samples, at most
        ``chunk_rows`` decoded images at a time (:meth:`log_weights_from_noise`)."""
        draws = [self.draw_noise(x.shape[0], generator, x.device) for _ in range(k)]
        eps_z = torch.stack([d[0] for d in draws])
        eps_u = torch.stack([d[1] for d in draws]) if draws[0][1] is not None else None
        return self.log_weights_from_noise(x, eps_z, eps_u, chunk_rows)

    @torch.no_grad()
    def log_weights_from_noise(self, x: Tensor, eps_z: Tensor, eps_u: Tensor | None = None,
                               chunk_rows: int = LOG_WEIGHT_ROWS) -> Tensor:
        """:meth:`log_weights` for given noise ``eps_z`` ``(k, B, dim z)`` (and ``eps_u``
        ``(k, B, dim u')``): ``(B, k)``. The encoder runs once; the decoder (and, under the
        flat prior, one warp per sample applied to all its draws at once) runs on chunks of
        draws of at most ``chunk_rows`` images."""
        post = self.encode(x)
        b, k = x.shape[0], eps_z.shape[0]
        step = max(1, chunk_rows // max(b, 1))
        out = []
        for j in range(0, k, step):
            ez = eps_z[j:j + step]
            eu = eps_u[j:j + step] if eps_u is not None else None
            z, u, code = self.latents(post, ez, eu)                          # (kc, B, .)
            kc = z.shape[0]
            if code is None:       # point-mass pose: one warp per sample for all its draws
                rec = self.decode_draws(z, post.u)                           # (kc, B, 784)
            else:
                rec = self.decode(z.reshape(kc * b, -1), u.reshape(kc * b, -1)).view(kc, b, D)
            lw = (self.likelihood_term(x, rec)
                  + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                  - log_normal(z, post.mu_z, post.logsigma_z))
            if code is not None:
                lw = lw + (log_normal(code, torch.zeros_like(code), torch.zeros_like(code))
                           - log_normal(code, post.mu_u, post.logsigma_u))
            out.append(lw)
        return torch.cat(out, 0).T

    def decode_draws(self, z: Tensor, u: Tensor) -> Tensor:
        """``x'`` for draws ``z`` ``(k, B, dim z)`` that share the pose ``u`` ``(B, dim u)`` of
        their sample: ``(k, B, 784)``."""
        return self.decode_upright(z)

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, k: int = 100, generator: torch.Generator | None = None
                       ) -> Tensor:
        """Importance-sampled ``log p(x)`` per sample in nats, ``(B,)``, with ``k`` draws from
        ``q`` as proposal: ``logsumexp(log w) - log k`` (a stable log-mean-exp). A lower
        bound in expectation that rises to ``log p(x)`` as ``k`` grows; ``k = 1`` is the ELBO:
        the importance-weighted bound ``L_k`` of Burda, Grosse & Salakhutdinov, *Importance
        Weighted Autoencoders* (ICLR 2016), whose theorem 1 gives the monotonicity in ``k``."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        lw = self.log_weights(x, k, generator)
        return torch.logsumexp(lw, 1) - math.log(k)


def batch_loss(terms: dict[str, Tensor]) -> Tensor:
    """The training loss of :meth:`VAE.forward`'s terms: ``-mean(elbo)`` over the batch."""
    return -terms["elbo"].mean()


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal draws of ``shape`` on ``device``, from ``generator`` when given. The draws
    are made on the generator's own device and then moved, so a CPU generator gives the same
    numbers whatever device the model is on (the book seeds its figures with CPU generators)."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _randn_on(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """Standard normal draws of ``shape`` and ``dtype`` on ``device`` from ``generator`` (on that
    device), else from the global stream: the training noise."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


class TVAE(VAE):
    """Transformer VAE: the decoder's upright ``y'`` is warped by ``u``, ``x' = T_u(y')``.

    ``u_mean`` (a buffer, ``(dim u,)``, saved in checkpoints): the training-set mean pose,
    the mean over the training digits of the posterior-mode ``u``. It starts at the pose
    head's initial pose and is set once, by :func:`tvae.train.set_mean_pose` after the last
    epoch; :meth:`decode_at_mean_pose` and ``sample(..., pose='mean')`` use it, nothing else.
    """

    has_pose = True

    def __init__(self, config: Config):
        super().__init__(config)
        self.warp = make_warp(config.warp, config.grid, config.sampling)
        self.pose = make_pose_head(config.prior, self._pose_features(), self.warp,
                                   config.rank, config.tps_start)
        self.register_buffer("u_mean", self.pose.to_warp(
            torch.zeros(1, self.pose.code_dim)).detach()[0] if self.pose.stochastic
            else self.pose.base.clone())

    def _pose_features(self) -> int:
        return self.config.hidden[-1]

    def encode(self, x: Tensor) -> Posterior:
        h = self.trunk(x)
        mu, ls = self._z_posterior(h)
        mu_u, ls_u = self.pose(h)
        return Posterior(mu, ls, mu_u, ls_u, self.pose.to_warp(mu_u))

    def latents(self, post, eps_z, eps_u=None):
        z = post.mu_z + post.logsigma_z.exp() * eps_z
        if post.logsigma_u is None:
            return z, post.u, None
        code = post.mu_u + post.logsigma_u.exp() * eps_u
        return z, self.pose.to_warp(code.reshape(-1, code.shape[-1])).view(
            *code.shape[:-1], -1), code

    def warp_image(self, img: Tensor, u: Tensor) -> Tensor:
        """``T_u(img)`` for flat images ``(B, 784)``."""
        return self.warp.apply(img.view(-1, 1, H, W), u).reshape(-1, D)

    def decode(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """``x' = T_u(y')`` for ``z`` ``(B, dim z)`` and ``u`` ``(B, dim u)`` (required; see
        :meth:`decode_at_mean_pose`)."""
        return self._warp_out(self.decode_upright(z).view(-1, 1, H, W), _need_pose(u)).reshape(-1, D)

    def decode_at_mean_pose(self, z: Tensor) -> Tensor:
        return self.decode(z, self.u_mean.expand(z.shape[0], -1))

    def _warp_out(self, img: Tensor, u: Tensor) -> Tensor:
        """The decoder's output warp applied to upright images ``(B, C, H, W)``."""
        return self.warp.apply(img, u)

    def decode_draws(self, z: Tensor, u: Tensor) -> Tensor:
        # the k draws of a sample become k channels of one image: one sampling grid each
        k, b = z.shape[:2]
        y = self.decode_upright(z).permute(1, 0, 2).reshape(b, k, H, W)
        return self._warp_out(y, u).reshape(b, k, D).permute(1, 0, 2)

    def sample_pose(self, n: int, generator: torch.Generator | None = None,
                    pose: str = "mean") -> Tensor:
        """Warp parameters ``(n, dim u)``: ``'mean'`` (training-set mean), ``'identity'`` or
        ``'prior'`` (``u = W u' + b``, ``u' ~ N(0, I)``; Gaussian priors only)."""
        dev = self.u_mean.device
        if pose == "mean":
            return self.u_mean.expand(n, -1)
        if pose == "identity":
            return self.warp.identity(dev).expand(n, -1)
        if pose == "prior":
            if not self.pose.stochastic:
                raise ValueError("the flat prior has no pose distribution; use pose='mean'")
            return self.pose.to_warp(_randn((n, self.pose.code_dim), generator, dev))
        raise ValueError(f"unknown pose {pose!r}; use 'mean', 'identity' or 'prior'")


class DTVAE(TVAE):
    """Double transformer VAE: ``y = T_u(x)``, a VAE on ``y``, ``x' = T_u^{-1}(y')``."""

    def __init__(self, config: Config):
        super().__init__(config)
        self.loc = mlp((D, *config.loc_hidden))

    def _pose_features(self) -> int:
        return self.config.loc_hidden[-1]

    def encode(self, x: Tensor) -> Posterior:
        mu_u, ls_u = self.pose(self.loc(x))
        u = self.pose.to_warp(mu_u)
        y = self.warp_image(x, u)
        mu, ls = self._z_posterior(self.trunk(y))
        return Posterior(mu, ls, mu_u, ls_u, u, y)

    def _warp_out(self, img: Tensor, u: Tensor) -> Tensor:
        """``x' = T_u^{-1}(y')``: the inverse warp."""
        return self.warp.apply_inverse(img, u)


def _need_pose(u: Tensor | None) -> Tensor:
    if u is None:
        raise ValueError("a pose model's decode needs the warp parameters u (B, dim u); "
                         "pass u, or use decode_at_mean_pose(z) for the training-set mean pose")
    return u


def init_weights(model: nn.Module, scheme: str) -> None:
    """Initialise ``model``'s dense layers in place under ``scheme`` (``Config.init``).

    - ``glorot``: Lasagne's ``DenseLayer`` defaults, which the original code used in every
      layer: weights uniform on ``[-a, a]`` with ``a = sqrt(6 / (fan_in + fan_out))``
      (Glorot & Bengio 2010, gain 1) and zero biases, in every ``nn.Linear`` of the model:
      encoder, decoder, localisation net and the pose heads. PAPER.md ("What the original code
      did") records Glorot in *every* layer and no zero-initialised localisation head, so the
      heads get it too: a flat pose head starts at ``start + tanh(W h)``, near its start warp
      (identity, or the doubled TPS grid) but not on it. Parameters that are not dense layers
      (the Gaussian priors' ``W`` and ``b``) keep their constructors' values.
    - ``torch``: PyTorch's ``nn.Linear`` defaults (Kaiming-uniform with ``a = sqrt(5)``, i.e.
      weights and biases uniform on ``+-1/sqrt(fan_in)``) and the pose heads as their
      constructors leave them (the flat head and the Gaussian mean head zero, so the warp starts
      exactly at its start): this package's behaviour before issue 10.

    Draws from torch's global generator, so the seed set before :func:`build_model` fixes it.
    """
    if scheme == "torch":
        return
    if scheme != "glorot":
        raise ValueError(f"unknown initialisation {scheme!r}; use 'glorot' or 'torch'")
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight, gain=1.0)
            nn.init.zeros_(layer.bias)


def build_model(config: Config) -> VAE:
    """The model of ``config.model`` (``vae``, ``affine-tvae``, ``tps-tvae``,
    ``affine-dtvae``, ``tps-dtvae``), on the CPU, initialised by :func:`init_weights` under
    ``config.init``."""
    cls = {"vae": VAE, "affine-tvae": TVAE, "tps-tvae": TVAE,
           "affine-dtvae": DTVAE, "tps-dtvae": DTVAE}[config.model]
    model = cls(config)
    init_weights(model, config.init)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["VAE", "TVAE", "DTVAE", "Posterior", "batch_loss", "build_model", "count_parameters",
           "init_weights",
           "log_bernoulli", "log_cb_normaliser", "mlp"]
