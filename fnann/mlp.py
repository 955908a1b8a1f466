"""The network: a static description (:class:`MLP`), its parameters and the forward pass.

Conventions (DESIGN.md): arrays are batch-first, ``x`` has shape ``(batch, n_in)``; layer
l has ``W`` of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)``, exactly the
textbook W^(l), b^(l). A batch's rows are the textbook's columns transposed, so

    Z = W A + b   (textbook, columns are examples)
    z = a_prev @ W.T + b   (fnann, rows are examples).
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnann import checks
from fnann.activations import Activation, get_activation, init_variance
from fnann.caches import compiled_cache
from fnann.norms import BatchNorm, Norm, NormTrace, RunningStats, get_norm, normalize, normalize_running
from fnann.tree_codec import register_checkpoint_type

Array = jax.Array
Precision = jax.lax.Precision | str | None


@register_checkpoint_type
class Dense(NamedTuple):
    """One layer's parameters: ``W`` of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)``."""

    W: Array
    b: Array


@register_checkpoint_type
class Normed(NamedTuple):
    """A normalized hidden layer's parameters (``MLP(norm=...)``): ``W`` of shape
    ``(n_out, n_in)``, and ``gamma`` γ and ``beta`` β of shape ``(n_out,)``.

    Math: Z = W A_prev (no b: β is the shift), Y = γ ⊙ Ẑ + β (``fnann.norms``).
    """

    W: Array
    gamma: Array
    beta: Array


Params = tuple[Dense | Normed, ...]
Stats = tuple[RunningStats, ...]  # one per batch-norm layer, in layer order (``MLP.batch_norm_layers``)


class Trace(NamedTuple):
    """What the forward pass keeps for the backward pass (a pytree).

    Attributes:
      Z: ``(Z^(1), ..., Z^(L))``, each of shape ``(batch, n_l)``.
      A: ``(A^(0), A^(1), ..., A^(L))`` with ``A^(0) = x`` and ``A^(L) = y_hat``.
      M: the dropout masks of a training pass, ``(M^(1), ..., M^(L-1))``, M^(l) of shape
        ``(batch, n_l)`` with entries 0 or 1 in the params' dtype (``None`` for a layer
        with p_l = 0); ``()`` at evaluation or without dropout: no mask anywhere.
      N: the normalized layers' ``NormTrace`` (Ẑ, 1/√(σ² + ε), μ, σ², Y = γ ⊙ Ẑ + β), one per
        hidden layer (``None`` for a layer without norm, or batch norm at evaluation); ``()``
        for a net without normalization. Z^(l) itself is W^(l) A^(l-1), before the norm.
    """

    Z: tuple[Array, ...]
    A: tuple[Array, ...]
    M: tuple[Array | None, ...] = ()
    N: tuple[NormTrace | None, ...] = ()

    @property
    def layer_norms(self) -> tuple[NormTrace | None, ...]:
        """``N`` with one entry per layer, the output layer's ``None`` included (all ``None``
        for a net without normalization)."""
        return (*self.N, None) if self.N else (None,) * len(self.Z)

    @property
    def sigma_inputs(self) -> tuple[Array, ...]:
        """Each layer's activation input in a training pass: Z^(l), or Y^(l) = γ ⊙ Ẑ^(l) + β
        of a normalized layer."""
        return tuple(z if n is None else n.Y for z, n in zip(self.Z, self.layer_norms))


@dataclasses.dataclass(frozen=True, init=False)
class MLP:
    """A frozen, hashable description of a feed-forward network (no arrays).

    Args:
      sizes: layer widths, inputs first: ``(64, 128, 64, 10)`` is three layers.
      hidden: the activation of every hidden layer (a name or an ``Activation``), or a
        sequence of them, one per hidden layer: σ^(1), ..., σ^(L-1).
      output: activation of the output layer, a name or an ``Activation``.
      residual: skip connections A^(l) = A^(l-1) + σ^(l)(Z^(l)): ``True`` for every hidden
        layer l >= 2 as wide as its input, or the layers l (1-based, 2 <= l <= L-1, each as
        wide as layer l - 1) that have one; ``False`` (default): none, the textbook MLP.
      dropout: inverted dropout on the hidden activations in training, one rate p in [0, 1)
        for every hidden layer or one per hidden layer: A^(l) = σ(Z^(l)) ⊙ M^(l) / (1 - p_l),
        M^(l) ~ Bernoulli(1 - p_l) per entry (``dropout_masks``), the identity at evaluation.
        With a skip the skip is kept: A^(l) = A^(l-1) + σ(Z^(l)) ⊙ M^(l) / (1 - p_l).
        ``0.0`` (default): none, the textbook MLP. Training a net with dropout needs a key
        per step (``train_step``'s ``key``; ``fit`` derives them from its ``key``).
      norm: normalization of the hidden layers' pre-activations before σ (``fnann.norms``):
        ``"layer"``, ``"batch"``, a ``fnann.LayerNorm(eps)``/``fnann.BatchNorm(momentum, eps)``,
        or one per hidden layer (``None`` entries: none there). A normalized layer has
        ``Normed(W, gamma, beta)`` params and computes Y^(l) = γ ⊙ Ẑ^(l) + β, A^(l) = σ(Y^(l)),
        Z^(l) = W^(l) A^(l-1) without b. Batch norm keeps running statistics (``init_stats``)
        for evaluation. ``None`` (default): none, the textbook MLP.

    Two ``MLP`` built alike compare and hash equal, so a net can be a static argument of
    ``jax.jit`` and a compiled step is reused. A sequence of one activation repeated is
    that activation: ``hidden=("relu", "relu")`` is the net ``hidden="relu"`` describes.

    Example:
      >>> net = MLP([4, 8, 3], hidden="tanh", output="softmax")
      >>> net.n_layers, net.n_in, net.n_out
      (2, 4, 3)
      >>> net == MLP((4, 8, 3), "tanh", "softmax")
      True
      >>> [a.name for a in MLP([4, 8, 8, 3], hidden=["relu", "tanh"]).activations]
      ['relu', 'tanh', 'softmax']
      >>> MLP([40, 100, 100, 10], residual=True).residual  # MNIST-1D's residual MLP
      (2,)
      >>> MLP([4, 8, 8, 3], dropout=[0.5, 0.1]).dropout_rates
      (0.5, 0.1)
      >>> MLP([4, 8, 8, 3], norm=[None, "batch"]).batch_norm_layers
      (2,)
    """

    sizes: tuple[int, ...]
    hidden: Activation | tuple[Activation, ...]
    output: Activation
    residual: tuple[int, ...] = ()
    # Left out of the hash, so that hash(MLP(sizes)) is what it was before dropout existed
    # (equal nets still hash equal; nets that differ only in dropout share a hash bucket).
    dropout: float | tuple[float, ...] = dataclasses.field(default=0.0, hash=False)
    norm: Norm | None | tuple[Norm | None, ...] = dataclasses.field(default=None, hash=False)  # as dropout

    def __init__(self, sizes: Sequence[int], hidden: str | Activation | Sequence[str | Activation] = "relu",
                 output: str | Activation = "softmax", residual: bool | Sequence[int] = False,
                 dropout: float | Sequence[float] = 0.0, norm=None):
        object.__setattr__(self, "sizes", checks.check_sizes(sizes))
        object.__setattr__(self, "hidden", _hidden(hidden, len(self.sizes) - 2))
        object.__setattr__(self, "output", get_activation(output, argname="output"))
        object.__setattr__(self, "residual", _residual(residual, self.sizes))
        object.__setattr__(self, "dropout", _dropout(dropout, len(self.sizes) - 2))
        object.__setattr__(self, "norm", _norm(norm, len(self.sizes) - 2))

    @property
    def n_layers(self) -> int:
        """L, the number of layers with weights."""
        return len(self.sizes) - 1

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    def _each_hidden(self, value, single: type) -> tuple:
        """``value`` for each hidden layer: one ``single`` value repeated, or the per-layer tuple."""
        return (value,) * (self.n_layers - 1) if isinstance(value, single) else value

    @property
    def hidden_activations(self) -> tuple[Activation, ...]:
        """sigma^(1), ..., sigma^(L-1): the hidden layers' activations."""
        return self._each_hidden(self.hidden, Activation)

    @property
    def activations(self) -> tuple[Activation, ...]:
        """sigma^(1), ..., sigma^(L): the hidden layers' and the output's."""
        return (*self.hidden_activations, self.output)

    @property
    def dropout_rates(self) -> tuple[float, ...]:
        """p_1, ..., p_(L-1): each hidden layer's dropout rate (0.0: no dropout there)."""
        return self._each_hidden(self.dropout, float)

    @property
    def has_dropout(self) -> bool:
        """Whether some hidden layer drops units in training (a training step needs a key)."""
        return any(p > 0 for p in self.dropout_rates)

    @property
    def norms(self) -> tuple[Norm | None, ...]:
        """The hidden layers' normalizations, one per hidden layer (``None``: none there)."""
        if isinstance(self.norm, tuple):
            return self.norm
        return (self.norm,) * (self.n_layers - 1)

    @property
    def has_norm(self) -> bool:
        """Whether some hidden layer is normalized (its params are ``Normed(W, gamma, beta)``)."""
        return any(n is not None for n in self.norms)

    @property
    def batch_norm_layers(self) -> tuple[int, ...]:
        """The layers l (1-based) with batch norm: each has one ``RunningStats`` in the stats."""
        return tuple(l for l, n in enumerate(self.norms, start=1) if isinstance(n, BatchNorm))

    @property
    def has_batch_norm(self) -> bool:
        """Whether the net keeps running statistics (training and evaluation then differ)."""
        return bool(self.batch_norm_layers)

    @property
    def norm_name(self) -> str:
        """The norms' names, ``"batch"``, or one per hidden layer: ``"layer,none"``; ``"none"``."""
        names = [n.name if n is not None else "none" for n in self.norms]
        return names[0] if len(set(names)) <= 1 and names else (",".join(names) or "none")

    @property
    def hidden_name(self) -> str:
        """The hidden activations' names, ``"relu"`` or one per layer: ``"relu,tanh"``."""
        if isinstance(self.hidden, Activation):
            return self.hidden.name
        return ",".join(a.name for a in self.hidden)

    def __repr__(self) -> str:
        hidden = self.hidden.name if isinstance(self.hidden, Activation) else tuple(a.name for a in self.hidden)
        skips = f", residual={self.residual}" if self.residual else ""
        drop = f", dropout={self.dropout!r}" if self.has_dropout else ""
        norm = f", norm={self.norm!r}" if self.has_norm else ""
        return f"MLP(sizes={self.sizes}, hidden={hidden!r}, output={self.output.name!r}{skips}{drop}{norm})"


def _norm(norm, n_hidden: int):
    """One normalization for every hidden layer, or one per hidden layer (equal ones: one)."""
    if isinstance(norm, (str, bytes)) or norm is None or not isinstance(norm, Sequence):
        one = get_norm(norm, "norm")
        if one is not None and n_hidden == 0:
            raise ValueError(f"norm = {norm!r}: this net has no hidden layer to normalize; "
                             "normalization applies to hidden layers' pre-activations only.")
        return one
    if len(norm) != n_hidden:
        raise ValueError(f"norm: {len(norm)} normalizations given for {n_hidden} hidden layer"
                         f"{'s' if n_hidden != 1 else ''}; give one per hidden layer (None: none), or one for all.")
    norms = tuple(get_norm(n, f"norm[{i}]") for i, n in enumerate(norm))
    if not norms:
        return None
    return norms[0] if all(n == norms[0] for n in norms) else norms


def _dropout(dropout, n_hidden: int) -> float | tuple[float, ...]:
    """One rate p in [0, 1) for every hidden layer, or one per hidden layer (equal ones: one)."""
    def rate(p, name: str) -> float:
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"{name} must be a dropout rate p, a number in [0, 1); got {p!r}.")
        p = float(p)
        if not (0.0 <= p < 1.0):  # NaN fails too
            raise ValueError(f"{name} = {p!r}: a dropout rate p must be in [0, 1) (the probability of "
                             "dropping a unit; p = 1 would drop them all and divide by 1 - p = 0).")
        return p

    if isinstance(dropout, (str, bytes)) or not isinstance(dropout, (numbers.Real, Sequence)):
        raise TypeError(f"dropout must be a rate p in [0, 1) or a sequence of them, one per hidden layer; "
                        f"got {dropout!r}.")
    if isinstance(dropout, Sequence):
        if len(dropout) != n_hidden:
            raise ValueError(f"dropout: {len(dropout)} rates given for {n_hidden} hidden layer"
                             f"{'s' if n_hidden != 1 else ''}; give one per hidden layer, or one rate for all.")
        rates = tuple(rate(p, f"dropout[{i}]") for i, p in enumerate(dropout))
        if not rates:
            return 0.0
        return rates[0] if all(p == rates[0] for p in rates) else rates
    p = rate(dropout, "dropout")
    if p > 0 and n_hidden == 0:
        raise ValueError(f"dropout = {p!r}: this net has no hidden layer to drop units from; "
                         "dropout applies to hidden activations only.")
    return p


def _residual(residual, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The layers l with a skip A^(l) = A^(l-1) + σ^(l)(Z^(l)): hidden, l >= 2, n_l = n_(l-1)."""
    L = len(sizes) - 1
    eligible = tuple(l for l in range(2, L) if sizes[l] == sizes[l - 1])
    if residual is False or residual is None:
        return ()
    if residual is True:
        if not eligible:
            raise ValueError(f"residual=True: no hidden layer l >= 2 of sizes {sizes} is as wide as its input, "
                             "so none can have a skip A^(l) = A^(l-1) + σ(Z^(l)); make two hidden widths equal.")
        return eligible
    if isinstance(residual, (str, bytes)) or not isinstance(residual, Sequence):
        raise TypeError(f"residual must be True, False or a sequence of layer numbers; got {residual!r}.")
    layers = []
    for l in residual:
        if isinstance(l, bool) or not isinstance(l, int):
            raise TypeError(f"residual: layer numbers are ints (1-based); got {l!r}.")
        if l not in eligible:
            why = (f"its input A^({l - 1}) has {sizes[l - 1]} units and A^({l}) {sizes[l]}" if 2 <= l < L
                   else f"only hidden layers 2..{L - 1} can have one")
            raise ValueError(f"residual: layer {l} cannot have a skip A^(l) = A^(l-1) + σ(Z^(l)): {why}.")
        layers.append(l)
    return tuple(sorted(set(layers)))


def _hidden(hidden, n_hidden: int) -> Activation | tuple[Activation, ...]:
    """One activation, or one per hidden layer (a sequence of one repeated is that one)."""
    if isinstance(hidden, (str, Activation)):
        return get_activation(hidden, argname="hidden")
    if not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be an activation (a name or an fnann.Activation) or a sequence of them, "
                        f"one per hidden layer; got {type(hidden).__name__}.")
    if len(hidden) != n_hidden:
        raise ValueError(f"hidden: {len(hidden)} activations given for {n_hidden} hidden layer"
                         f"{'s' if n_hidden != 1 else ''}; give one per hidden layer, or one name for all.")
    acts = tuple(get_activation(a, argname=f"hidden[{i}]") for i, a in enumerate(hidden))
    if not acts:
        return get_activation("relu")  # no hidden layer: the default, as MLP(sizes) has it
    return acts[0] if all(a == acts[0] for a in acts) else acts


def init(key: Array, net: MLP, dtype=jnp.float32) -> Params:
    """Draws initial parameters by each layer's activation's rule; zero biases.

    Math: W^(l)_ij ~ N(0, var^(l)), var^(l) = 2 / n_in for a ReLU-like sigma^(l) ("he": He
          et al. 2015), 2 / (n_in + n_out) otherwise ("glorot": Glorot & Bengio 2010), as
          ``sigma^(l).init`` says (``fnann.activations.init_variance``); b^(l) = 0.
    The standard normals for all layers are one draw from ``key``, cut into W^(1), W^(2), ...
    in layer order (row-major), so the draw is one random program however deep the network.

    Args:
      key: a ``jax.random`` key.
      net: the network.
      dtype: floating dtype of the parameters.

    Returns:
      A tuple with one ``Dense(W, b)`` per layer, ``W`` of shape ``(n_out, n_in)``; a
      normalized hidden layer's is ``Normed(W, gamma, beta)``, γ = 1 and β = 0 (its W drawn
      as the plain layer's: the same key gives the same W).

    Raises:
      ValueError: when the params and their draw (`init_bytes`) need more memory than the
        device holds (``fnann.checks.memory_limit``): refused before anything is allocated.

    Example:
      >>> params = init(jax.random.key(0), MLP([4, 8, 3]))
      >>> [p.W.shape for p in params]
      [(8, 4), (3, 8)]
    """
    checks.check_net(net)
    checks.check_key(key)
    dtype = checks.check_dtype(dtype)
    checks.check_fits_memory(init_bytes(net, dtype), f"init of {net} in {dtype.name}")
    return compiled_draw(net, dtype)(key)


def init_bytes(net: MLP, dtype) -> int:
    """The bytes ``init`` allocates: the params, Σ (n_out·n_in + n_out), and the one normal
    draw they are cut from, Σ n_out·n_in, each entry of ``dtype``'s size (as JAX holds it:
    float64 is float32 while x64 is off)."""
    n_W = sum(n_out * n_in for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]))
    n_normed = sum(net.sizes[l] for l, n in enumerate(net.norms, start=1) if n is not None)  # γ, β for b
    return (2 * n_W + sum(net.sizes[1:]) + n_normed) * jax.dtypes.canonicalize_dtype(dtype).itemsize


def _draws(key: Array, net: MLP, dtype) -> Params:
    shapes = [(n_out, n_in) for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:])]
    N = jax.random.normal(key, (sum(n_out * n_in for n_out, n_in in shapes),), dtype)
    params, start = [], 0
    for (n_out, n_in), act, norm in zip(shapes, net.activations, (*net.norms, None)):
        var = init_variance(act, n_in, n_out)
        W = jnp.sqrt(var).astype(dtype) * N[start:start + n_out * n_in].reshape(n_out, n_in)
        if norm is None:
            params.append(Dense(W, jnp.zeros((n_out,), dtype)))
        else:  # γ = 1, β = 0: the norm starts as the plain standardization
            params.append(Normed(W, jnp.ones((n_out,), dtype), jnp.zeros((n_out,), dtype)))
        start += n_out * n_in
    return tuple(params)


def init_stats(net: MLP, dtype=jnp.float32) -> Stats:
    """The running statistics a batch-norm net starts from: μ_run = 0, σ²_run = 1 per unit.

    Returns:
      One ``RunningStats(mean, var)`` per batch-norm layer, in layer order
      (``net.batch_norm_layers``), each of shape ``(n_l,)``; ``()`` for a net without batch norm.

    Example:
      >>> [s.mean.shape for s in init_stats(MLP([4, 8, 6, 3], norm="batch"))]
      [(8,), (6,)]
    """
    checks.check_net(net)
    dtype = checks.check_dtype(dtype)
    return tuple(RunningStats(*jax.device_put((np.zeros(net.sizes[l], dtype), np.ones(net.sizes[l], dtype))))
                 for l in net.batch_norm_layers)  # host arrays put on the device: no program to compile


@compiled_cache(maxsize=32)
def compiled_draw(net: MLP, dtype) -> Callable[[Array], Params]:
    """``init``'s draws for (net, dtype) as one compiled program: one random draw cut into the
    layers' W in layer order (one normal sampler compiles in ~0.3 s on a CPU; one per layer
    cost ~1 s). Bounded like every compiled cache: each program holds ~4 MB of code."""
    return jax.jit(lambda key: _draws(key, net, dtype))


def dense_forward(layer: Dense, a_prev: Array, precision: Precision = None) -> Array:
    """Affine map of one layer.

    Math: Z = W A_prev + b (textbook columns); here rows are examples: z = a_prev Wᵀ + b.
    Shapes: a_prev (batch, n_in), layer.W (n_out, n_in), layer.b (n_out,) -> (batch, n_out).
    """
    with precision_scope(precision):
        return a_prev @ layer.W.T + layer.b


def precision_scope(precision: Precision = None):
    """``jax.default_matmul_precision`` for ``precision`` around the tracing of the math (which
    itself never names a precision), or nothing for ``None``: the caller's setting stands.

    A ``jax.lax.Precision``, its name, a ``DotAlgorithmPreset`` or a pair of equal ones;
    ``"bfloat16_3x"`` and ``"fastest"`` map to the ``Precision`` they name (HIGH, DEFAULT).
    """
    checks.check_precision(precision)
    if precision is None:
        return contextlib.nullcontext()
    if isinstance(precision, (tuple, list)):
        if precision[0] != precision[1]:
            raise ValueError(f"precision: a pair of different precisions {tuple(precision)!r} cannot be "
                             "applied to a whole pass; give one precision.")
        precision = precision[0]
    if isinstance(precision, jax.lax.DotAlgorithmPreset):
        return jax.default_matmul_precision(precision.name)
    if isinstance(precision, str) and precision in ("bfloat16", "tensorfloat32", "float32"):
        return jax.default_matmul_precision(precision)
    return jax.default_matmul_precision(jax.lax.Precision(precision).name.lower())


def dropout_masks(net: MLP, key: Array, batch: int, dtype=jnp.float32) -> tuple[Array | None, ...]:
    """The dropout masks of one training pass: ``(M^(1), ..., M^(L-1))``, unchecked.

    Math: M^(l)_ij ~ Bernoulli(1 - p_l), independent entries of shape ``(batch, n_l)``, 0 or 1
          in ``dtype``; ``None`` for a layer with p_l = 0. Layer l draws from
          ``jax.random.fold_in(key, l)``, so a layer's mask does not depend on the others'
          rates, and the masks of a batch do not depend on how its rows are sharded.
    """
    masks = []
    for l, p in enumerate(net.dropout_rates, start=1):
        if p == 0:
            masks.append(None)
        else:
            keep = jax.random.bernoulli(jax.random.fold_in(key, l), 1.0 - p, (batch, net.sizes[l]))
            masks.append(keep.astype(dtype))
    return tuple(masks)


def dropout_forward(a: Array, mask: Array | None, p: float) -> Array:
    """Inverted dropout of one layer's activations: A = σ(Z) ⊙ M / (1 - p).

    The expectation over M is σ(Z) itself, so evaluation (no mask) is the identity.
    Its backward is :func:`fnann.backprop.dropout_backward`, the same product.
    """
    if mask is None:
        return a
    return a * mask / (1.0 - p)


def feedforward(net: MLP, params: Params, x: Array, shifts=None, masks=None,
                stats: Stats | None = None) -> tuple[Array, Trace]:
    """The forward pass, unchecked (callers check at their door): ``(ŷ, Trace(Z, A, M))``.

    Math: A^(0) = X;  Z^(l) = W^(l) A^(l-1) + b^(l);  A^(l) = σ^(l)(Z^(l)), l = 1..L;  ŷ = A^(L);
          with a skip at layer l (``net.residual``): A^(l) = A^(l-1) + σ^(l)(Z^(l));
          with dropout masks (training): A^(l) = σ^(l)(Z^(l)) ⊙ M^(l) / (1 - p_l) on hidden
          layers, the skip's A^(l-1) not dropped.
    ``shifts``: optional s^(l) added to each Z^(l); ``jax.grad`` in them at 0 is ∂L/∂Z^(l)
    (autodiff's δ, for ``fnann explain`` and the tests).
    ``masks``: ``dropout_masks(net, key, batch)``, or ``None``/``()``: evaluation, no dropout.
    A normalized layer (``net.norms``): Z^(l) = W^(l) A^(l-1), Y^(l) = γ ⊙ Ẑ^(l) + β,
    A^(l) = σ^(l)(Y^(l)) (``fnann.norms.normalize``), its ``NormTrace`` in ``trace.N``.
    ``stats``: ``None``, training: batch norm by the batch's statistics; the running
    statistics (``init_stats``): evaluation, batch norm by them.
    """
    masks = tuple(masks) if masks else ()
    rates, norms = net.dropout_rates, (*net.norms, None)
    running = dict(zip(net.batch_norm_layers, stats)) if stats is not None else {}
    A = [jnp.asarray(x, dtype=params[0].W.dtype)]  # A[l] = A^(l)
    Z = [None]  # Z[l] = Z^(l), 1-based like the textbook
    N = []  # the normalized layers' NormTrace, one entry per hidden layer
    for l, (layer, sigma, norm) in enumerate(zip(params, net.activations, norms), start=1):
        if norm is None:
            Z.append(A[l - 1] @ layer.W.T + layer.b)  # Z^(l) = W^(l) A^(l-1) + b^(l)
        else:
            Z.append(A[l - 1] @ layer.W.T)  # Z^(l) = W^(l) A^(l-1): β is the shift
        if shifts is not None:
            Z[l] = Z[l] + shifts[l - 1]
        if norm is None:
            A.append(sigma.fn(Z[l]))  # A^(l) = σ^(l)(Z^(l))
            N.append(None)
        elif l in running:  # batch norm at evaluation: the running statistics
            A.append(sigma.fn(normalize_running(norm, running[l], Z[l], layer.gamma, layer.beta)))
            N.append(None)
        else:
            Y, norm_trace = normalize(norm, Z[l], layer.gamma, layer.beta)  # Y^(l) = γ ⊙ Ẑ^(l) + β
            A.append(sigma.fn(Y))  # A^(l) = σ^(l)(Y^(l))
            N.append(norm_trace)
        if masks and l < net.n_layers:
            A[l] = dropout_forward(A[l], masks[l - 1], rates[l - 1])  # σ(Z^(l)) ⊙ M^(l) / (1 - p_l)
        if l in net.residual:
            A[l] = A[l - 1] + A[l]  # A^(l) = A^(l-1) + σ^(l)(Z^(l)): the skip
    return A[-1], Trace(tuple(Z[1:]), tuple(A), masks, tuple(N[:-1]) if net.has_norm else ())


def forward_trace(net: MLP, params: Params, x, precision: Precision = None,
                  key: Array | None = None, stats: Stats | None = None) -> tuple[Array, Trace]:
    """Forward pass that keeps every Z^(l) and A^(l) for the backward pass.

    Math: A^(0) = X;  Z^(l) = W^(l) A^(l-1) + b^(l);  A^(l) = sigma^(l)(Z^(l));  ŷ = A^(L).
    Shapes: x (batch, n_in) -> y_hat (batch, n_out); trace.Z[l-1], trace.A[l] (batch, n_l).

    ``key``: a training pass of a net with dropout: the masks M^(l) = ``dropout_masks(net,
    key, batch)`` are drawn, applied (A^(l) = σ(Z^(l)) ⊙ M^(l) / (1 - p_l)) and kept in
    ``trace.M`` for ``backward``. ``None`` (default): evaluation, no dropout.

    Normalized layers keep their ``NormTrace`` in ``trace.N``. Batch norm normalizes by the
    batch's statistics (the training pass, which ``backward`` differentiates; it needs two
    rows or more), or, given ``stats``, by the running ones (evaluation; no backward).

    Returns:
      ``(y_hat, trace)``; ``trace`` is a pytree and can cross a ``jit`` boundary.

    Raises:
      ValueError, TypeError: when ``x`` or ``params`` do not fit ``net``, hold NaN or inf
        (concrete arrays), or ``precision`` is not a matmul precision.
    """
    checks.check_inputs(net, params, x)
    if stats is None:
        checks.check_norm_rows(net, x)
    else:
        checks.check_stats(net, stats)
    masks = None
    if key is not None and net.has_dropout:
        checks.check_key(key)
        masks = dropout_masks(net, key, jnp.shape(x)[0], params[0].W.dtype)
    with precision_scope(precision):
        return feedforward(net, params, x, masks=masks, stats=stats)


def forward(net: MLP, params: Params, x, precision: Precision = None, stats: Stats | None = None) -> Array:
    """The network's output ŷ = A^(L) for a batch ``x`` of shape ``(batch, n_in)`` (evaluation).

    Math: A^(l) = sigma^(l)(W^(l) A^(l-1) + b^(l)), A^(0) = X.

    ``stats``: a net with batch norm evaluates with its running statistics (``init_stats``,
    or those training returned): Ẑ = (Z - μ_run) / √(σ²_run + ε). Required for such a net.

    Example:
      >>> net = MLP([2, 3, 2])
      >>> forward(net, init(jax.random.key(0), net), jnp.ones((5, 2))).shape
      (5, 2)
    """
    checks.check_net(net)
    if net.has_batch_norm and stats is None:
        raise ValueError(f"{net} has batch norm: evaluating it needs its running statistics, "
                         "forward(net, params, x, stats=stats) (fnann.init_stats(net), or the stats "
                         "training returned).")
    return forward_trace(net, params, x, precision, stats=stats)[0]
