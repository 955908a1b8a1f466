"""``summary(net)``: a network's layers, shapes, parameter counts and FLOPs, as a table.

For layer l with n_in inputs and n_out units (W^(l) of shape (n_out, n_in), b^(l) of shape
(n_out,)), per example:

    parameters = n_out n_in + n_out
    FLOPs of Z = W a + b = 2 n_in n_out + n_out

(n_in multiplies and n_in adds per unit for W a, which is how XLA counts a dot, and one add
for + b; ``jax.jit(...).lower(...).cost_analysis()`` reports the same number). The
activation's few operations per unit are not counted. A training step costs about three
times the forward FLOPs per example (the backward pass computes dW and dA, each as large).

A normalized hidden layer (``MLP(norm=...)``) has no b but γ and β, and its norm's FLOPs per
example are counted beside Z = W a (2 n_in n_out, no + b):

    parameters = n_out n_in + 2 n_out
    layer norm: 7 n_out   (the mean's sum n, Z - μ n, the variance's squares and sum 2n,
                           × 1/√(σ² + ε) n, γ ⊙ n, + β n; the scalar divisions and √ not counted)
    batch norm: 4 n_out   (at evaluation, by the running statistics: Z - μ_run, × 1/√(σ²_run + ε)
                           per unit, γ ⊙, + β; training by the batch's own costs 7 n_out as layer norm)

A batch-norm net also keeps its running statistics μ_run, σ²_run: 2 n_l values per batch-norm
layer, not trained and not among the parameters (``Summary.stats_size``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from fnann import checks
from fnann.mlp import MLP, Params

__all__ = ["LayerSummary", "Summary", "summary"]


class LayerSummary(NamedTuple):
    """One layer: ``index`` l (from 1), shapes, activation name, parameter and FLOP counts."""

    index: int
    n_in: int
    n_out: int
    activation: str
    params: int  # n_out n_in + n_out (normalized: n_out n_in + 2 n_out)
    flops: int  # per example: 2 n_in n_out + n_out (normalized: 2 n_in n_out + the norm's)
    norm: str | None = None  # "layer", "batch" or None: the layer's normalization (γ, β for b)

    @property
    def W_shape(self) -> tuple[int, int]:
        return (self.n_out, self.n_in)

    @property
    def b_shape(self) -> tuple[int]:
        return (self.n_out,)

    @property
    def shift(self) -> str:
        """The table's b column: ``(n,)``, or ``γ, β (n,)`` for a normalized layer (no b)."""
        return str(self.b_shape) if self.norm is None else f"γ, β {self.b_shape}"


class Summary(NamedTuple):
    """The summary of a network; ``str(summary)`` is a table."""

    net: MLP
    layers: tuple[LayerSummary, ...]
    dtype: jnp.dtype

    @property
    def params(self) -> int:
        """The number of trainable parameters, all layers together."""
        return sum(layer.params for layer in self.layers)

    @property
    def flops(self) -> int:
        """The forward FLOPs per example, all layers together (activations not counted)."""
        return sum(layer.flops for layer in self.layers)

    @property
    def nbytes(self) -> int:
        """The parameters' size in bytes in ``dtype``."""
        return self.params * jnp.dtype(self.dtype).itemsize

    @property
    def stats_size(self) -> int:
        """The running statistics' values (batch norm: μ_run, σ²_run, 2 n_l per batch-norm layer); 0 without."""
        return sum(2 * self.net.sizes[l] for l in self.net.batch_norm_layers)

    def __str__(self) -> str:
        head = ("layer", "input", "output", "W", "b", "activation", "params", "FLOPs/example")
        rows = [(str(L.index), f"(batch, {L.n_in})", f"(batch, {L.n_out})", str(L.W_shape),
                 L.shift, L.activation, f"{L.params:,}", f"{L.flops:,}") for L in self.layers]
        rows.append(("total", "", "", "", "", "", f"{self.params:,}", f"{self.flops:,}"))
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

        def line(row):
            cells = [c.rjust(w) if i >= 6 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            return "  ".join(cells).rstrip()

        table = [line(head), line(["-" * w for w in widths]), *map(line, rows[:-1]),
                 line(["-" * w for w in widths]), line(rows[-1])]
        itemsize, dtype = jnp.dtype(self.dtype).itemsize, jnp.dtype(self.dtype).name
        stats = (f"; running statistics (batch norm, not trained): {self.stats_size:,} values "
                 f"({_size(self.stats_size * itemsize)} in {dtype})" if self.stats_size else "")
        return "\n".join([repr(self.net), *table,
                          f"{self.params:,} parameters ({_size(self.nbytes)} in {dtype}), "
                          f"{self.flops:,} FLOPs per example forward" + stats])


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024:.1f} KiB" if nbytes >= 1024 else f"{nbytes} B"


NORM_FLOPS = {"layer": 7, "batch": 4}
"""FLOPs per unit and example of a norm in the forward pass (batch norm: at evaluation; see above)."""


def summary(net: MLP, params: Params | None = None, dtype=jnp.float32) -> Summary:
    """The layers of ``net`` with their shapes, activations, parameter counts and FLOPs.

    Math: per layer, parameters = n_out n_in + n_out and forward FLOPs per example
    = 2 n_in n_out + n_out (Z = W a + b; activations not counted), + n_out for a skip
    A^(l) = A^(l-1) + σ(Z^(l)) (its activation shows as ``"relu + skip"``).

    Args:
        net: the network.
        params: optional parameters of ``net``; checked against it, and their dtype is
            the one the sizes are given in.
        dtype: the dtype of the sizes when ``params`` is not given (default float32).

    Returns:
        A ``Summary``; print it for a table.

    Raises:
        TypeError: ``net`` is not an ``MLP``.
        ValueError: ``params`` do not match ``net``.

    Example:
        >>> from fnann import MLP
        >>> s = summary(MLP([4, 8, 3], hidden="tanh"))
        >>> s.params, s.flops  # (8*4 + 8) + (3*8 + 3); (2*4*8 + 8) + (2*8*3 + 3)
        (67, 123)
        >>> print(s)
        MLP(sizes=(4, 8, 3), hidden='tanh', output='softmax')
        layer  input       output      W       b     activation  params  FLOPs/example
        -----  ----------  ----------  ------  ----  ----------  ------  -------------
        1      (batch, 4)  (batch, 8)  (8, 4)  (8,)  tanh            40             72
        2      (batch, 8)  (batch, 3)  (3, 8)  (3,)  softmax         27             51
        -----  ----------  ----------  ------  ----  ----------  ------  -------------
        total                                                        67            123
        67 parameters (268 B in float32), 123 FLOPs per example forward
    """
    checks.check_net(net)
    if params is not None:
        checks.check_params(params, net.sizes, norms=net.norms)
        dtype = params[0].W.dtype
    rates = (*net.dropout_rates, 0.0)  # the output layer drops nothing
    norms = tuple(None if n is None else n.name for n in (*net.norms, None))

    def label(l: int, act) -> str:  # dropout: training only, so no FLOPs in the forward pass counted here
        return ((f"{norms[l - 1]} norm + " if norms[l - 1] else "") + act.name
                + (f" + dropout {rates[l - 1]:g}" if rates[l - 1] > 0 else "")
                + (" + skip" if l in net.residual else ""))

    def layer(l: int, n_in: int, n_out: int, act) -> LayerSummary:
        norm, skip = norms[l - 1], (n_out if l in net.residual else 0)
        if norm is None:  # Z = W a + b
            return LayerSummary(l, n_in, n_out, label(l, act), n_out * n_in + n_out, 2 * n_in * n_out + n_out + skip)
        return LayerSummary(l, n_in, n_out, label(l, act), n_out * n_in + 2 * n_out,  # W, γ, β; Z = W a, the norm
                            2 * n_in * n_out + NORM_FLOPS[norm] * n_out + skip, norm)

    layers = tuple(layer(l, n_in, n_out, act)
                   for l, (n_in, n_out, act) in enumerate(zip(net.sizes[:-1], net.sizes[1:], net.activations), 1))
    return Summary(net, layers, jnp.dtype(dtype))
