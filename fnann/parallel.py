"""Data parallelism over a device mesh: where ``fit``'s arrays live and how batches split.

``fit(..., mesh=mesh, data_axis="data")`` takes a ``jax.sharding.Mesh`` and splits the rows
of every batch over the mesh axis ``data_axis``, while the parameters and the optimizer
state are replicated on every device (``NamedSharding`` placed with ``jax.device_put``).
The compiled epoch is the same program as on one device, with one sharding constraint on
each batch; XLA's SPMD partitioner splits each step's matrix products by rows, so that
every device forms the partial sums of ∂L/∂W = δᵀ A_prev and ∂L/∂b = Σ δ over its rows,
and all-reduces them: each device then applies the same update to the same parameters.

Uneven batches: a batch of m rows on D devices with D not dividing m (a ``batch_size``
that is not a multiple of D, the last n mod b rows, a batch smaller than D) is split
unevenly by XLA, which pads the short shards and masks the padding out of every reduction.
Each example is used exactly once and every batch is averaged over its true size: the
gradient is the mean of the m per-example gradients, as on one device.

Several processes (``jax.distributed.initialize``): the mesh spans every process's
devices, and each process passes *its own shard* of the data to ``fit``. The shards become
one global array with ``jax.make_array_from_process_local_data``, rows in the order of the
mesh's devices (process 0's rows first for a mesh over ``jax.devices()``); every process
must hold the same number of rows. Each epoch shuffles the global array exactly as one
process would, so the trained parameters are those of a single-process ``fit`` on the
concatenated data.

Meshes built by ``jax.make_mesh`` have ``Explicit`` axes by default; fnann uses a copy with
``Auto`` axes (the same devices and names), on which XLA chooses the partitioning.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

Array = jax.Array


def check_mesh(mesh: Any, axis: Any, axis_name: str = "data_axis") -> Mesh:
    """Checks a mesh and one of its axes; returns the mesh with ``Auto`` axis types.

    Args:
      mesh: a ``jax.sharding.Mesh``.
      axis: the name of the axis to shard over (``None`` is allowed: no axis).
      axis_name: the argument's name, for the error messages.

    Raises:
      TypeError: ``mesh`` is not a ``jax.sharding.Mesh``.
      ValueError: ``axis`` is not one of the mesh's axis names, or the mesh holds none of
        this process's devices.

    Example:
      >>> mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
      >>> check_mesh(mesh, "data").shape["data"]
      1
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh((jax.device_count(),), "
            f"('data',))); got {type(mesh).__name__}.")
    if axis is not None and axis not in mesh.axis_names:
        raise ValueError(
            f"{axis_name}={axis!r} is not an axis of the mesh; its axes are "
            f"{tuple(mesh.axis_names)} (sizes {dict(mesh.shape)}).")
    if not set(mesh.devices.flat) & set(jax.local_devices()):
        raise ValueError(
            "mesh holds none of this process's devices (jax.local_devices()); build it from "
            "jax.devices(), which lists every process's devices.")
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)


def axis_size(mesh: Mesh, axis: str | None) -> int:
    """The number of devices along ``axis`` (1 for ``None``)."""
    return 1 if axis is None else mesh.shape[axis]


def spans_processes(mesh: Mesh) -> bool:
    """Whether the mesh holds devices of other processes (multi-process training)."""
    return any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def _put(a, sharding: NamedSharding, spans: bool) -> Array:
    if isinstance(a, jax.Array) and a.sharding == sharding:
        return a
    if spans and isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        # a typed key (fit's dropout keys): its raw bits placed, then wrapped again
        return jax.random.wrap_key_data(_put(jax.random.key_data(a), sharding, spans), impl=jax.random.key_impl(a))
    if not spans:
        return jax.device_put(a, sharding)
    # Each process holds the same values (replicated) or its own rows (sharded).
    return jax.make_array_from_process_local_data(sharding, np.asarray(a))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of ``tree`` on every device of ``mesh`` (a full copy on each).

    On several processes, every process must pass the same values (as ``init`` with the
    same key gives).
    """
    sharding = NamedSharding(mesh, P())
    spans = spans_processes(mesh)
    return jax.tree.map(lambda a: _put(a, sharding, spans), tree)


def put_data(a, mesh: Mesh, axis: str, name: str = "x") -> Array:
    """Places a dataset for training or inference on ``mesh``.

    One process: the whole array is copied to every device, so that each epoch's shuffle
    is a local gather and each device then reads its rows of every batch. Several
    processes: ``a`` is this process's shard and becomes the global array, its rows
    sharded over ``axis`` (every process must pass the same number of rows, a multiple of
    its number of devices along ``axis``).

    Raises:
      ValueError: on several processes, when the processes' row counts differ or do not
        split evenly over their devices.
    """
    if not spans_processes(mesh):
        return _put(a, NamedSharding(mesh, P()), False)
    from jax.experimental import multihost_utils

    rows = np.asarray(multihost_utils.process_allgather(np.int64(np.shape(a)[0]))).ravel()
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    per_process = len(local) * mesh.shape[axis] // mesh.devices.size
    if len(set(rows.tolist())) != 1 or rows[0] % max(per_process, 1):
        raise ValueError(
            f"{name}: on several processes every process must pass the same number of rows, "
            f"a multiple of its {per_process} shard(s) along {axis!r}; the processes hold "
            f"{rows.tolist()} rows.")
    return _put(a, NamedSharding(mesh, P(axis)), True)


def constrain_rows(a: Array, mesh: Mesh | None, axis: str | None) -> Array:
    """Inside ``jit``: asks XLA to split the rows of ``a`` over ``axis`` (identity if None).

    Rows that do not divide evenly are padded by XLA and masked out of every reduction.
    """
    if mesh is None or axis is None:
        return a
    return jax.lax.with_sharding_constraint(a, NamedSharding(mesh, P(axis)))


def replicated_rows(mesh: Mesh):
    """A constraint for inside ``jit``: a full copy of the array on every device.

    ``fit`` applies it to each epoch's shuffled data, so that every device reads its rows
    of each batch locally (rather than XLA resharding the shuffled data once per epoch).
    """
    sharding = NamedSharding(mesh, P())
    return lambda a: jax.lax.with_sharding_constraint(a, sharding)


def sharded_step(step, mesh: Mesh, axis: str):
    """Wraps a training step ``step(params, opt_state, x, y)`` so that its batch is split.

    The rows of ``x`` and ``y`` are sharded over ``axis``; everything else follows from
    the replicated parameters (XLA all-reduces the gradient sums). A dropout key (a fifth
    argument) is replicated: the masks are drawn for the global batch, and JAX's
    partitionable threefry gives every device its rows of them, the one-device masks.
    A batch-norm net's running statistics (``stats=``) pass through, replicated like the
    params: the batch's μ_B, σ²_B are means over the global batch (XLA all-reduces them too).
    """

    def split(params, opt_state, x, y, *key, **stats):  # key: the step's dropout key, replicated
        return step(params, opt_state, constrain_rows(x, mesh, axis), constrain_rows(y, mesh, axis),
                    *key, **stats)

    return split


def check_divisible(count: int, mesh: Mesh, axis: str, what: str) -> None:
    """Raises ValueError unless ``count`` is a multiple of the size of ``axis``."""
    size = axis_size(mesh, axis)
    if not isinstance(count, numbers.Integral) or count % size:
        raise ValueError(
            f"{what} ({count}) must be a multiple of the mesh axis {axis!r} ({size} devices).")
