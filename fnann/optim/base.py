"""The optimizer protocol and the tree plumbing every optimizer shares.

An optimizer is an ``Optimizer(init, update)`` pair of pure functions (optax's signature,
jax.example_libraries' size)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # params is optional
    params = apply_updates(params, updates)             # theta <- theta + updates

``update`` returns *signed* updates (``-lr * g`` for plain gradient descent), so
``apply_updates`` only adds. ``params``, ``grads`` and every moment in a state are pytrees of
the same structure (dicts, tuples, lists, NamedTuples such as ``Dense(W, b)``, nested); nothing
is mutated, and every function works under ``jax.jit``, ``jax.vmap`` and ``jax.lax.scan``.

Precision: moments are kept in the parameter's dtype, but never below float32: for float16
and bfloat16 parameters the moments and the arithmetic of an update are float32 and only the
update is cast back to the parameter's dtype (in float16, eps = 1e-8 rounds to 0 and a zero
gradient entry would give Adam's 0/0). float32 and float64 parameters keep their own dtype.

Identity: the optimizers built by fnann's factories compare and hash by their configuration
(factory and arguments), so ``adam(1e-3) == adam(1e-3)`` and a compiled training epoch cached
for one is reused for the other. An ``Optimizer`` built by hand, ``Optimizer(init, update)``,
compares by its two functions' :func:`fingerprint` (code and closed-over values), so a fresh
``optax.adam(1e-3)`` equals an earlier one. Any object with optax's ``init``/``update``
contract is accepted where fnann takes an optimizer (``as_optimizer``).

Learning rates: ``lr`` is a non-negative float or a schedule ``step -> lr`` (see
``fnann.optim.schedules``). The state of every optimizer holds ``step``, an int32 scalar
counting the updates already applied, and update number k (k = 0, 1, ...) uses
``schedule(k)``: the first update uses ``schedule(0)``, as in optax. Adam's
bias-correction exponent is ``t = step + 1``, so t counts from 1 as in the paper.

Grads are checked against the state (and against ``params`` when given) before any maths:
a different tree structure or leaf shape raises ``ValueError`` naming ``grads``. The check is
static, so it also runs at trace time under ``jit``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from fnann import checks
from fnann.tree_codec import register_checkpoint_type

Params = Any  # a pytree of arrays
Grads = Any  # a pytree shaped like Params: dL/dtheta
Updates = Any  # a pytree shaped like Params: what apply_updates adds
OptState = Any  # an optimizer's state: a NamedTuple, or a tuple of them for chain
Schedule = Callable[[jax.Array], jax.typing.ArrayLike]
ScalarOrSchedule = Union[float, Schedule]

__all__ = [
    "ByConfig",
    "Optimizer",
    "EmptyState",
    "as_optimizer",
    "configured",
    "OPTIMIZERS",
    "textbook",
    "equations",
    "gradient_transform",
    "descends",
    "apply_updates",
    "global_norm",
    "tree_zeros_like",
    "tree_moments_like",
    "moment_dtype",
    "tree_ema",
    "tree_map_checked",
    "check_like",
    "check_real",
    "cast_like",
    "lr_at",
    "one_minus_power",
    "zero_step",
    "is_zero",
    "as_float",
    "check_hyperparameter",
    "check_lr",
    "check_decay",
    "check_positive",
    "check_nonnegative",
]


class ByConfig:
    """Equality and hash by configuration, else by what the wrapped functions compute.

    ``config`` is a hashable description ``(factory name, arguments)`` set by
    :func:`configured`, or ``None``: then two objects are equal when their functions have
    equal :func:`fingerprint`s (the same code over equal closed-over values, as a fresh
    ``optax.adam(1e-3)`` has), and only when they are the very same functions where a
    fingerprint cannot see inside. Subclasses list their functions in ``_functions``.
    """

    config: Hashable | None
    _functions: tuple[str, ...] = ()

    @functools.cached_property
    def _key(self):
        if self.config is not None:
            return ("config", self.config)
        return ("functions",) + tuple(fingerprint(getattr(self, f)) for f in self._functions)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key == other._key

    def __hash__(self):
        return hash(self._key)


_SMALL_ARRAY = 1 << 16  # bytes: a larger closed-over array is keyed by its identity
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def fingerprint(obj: Any, _seen: frozenset = frozenset()) -> Hashable:
    """A hashable key, equal for two objects that compute the same thing, for keying compiled
    functions by an optax transform (a closure, not comparable) rather than by its identity.

    A Python function is its code, globals, defaults and the fingerprints of its closure's
    values, recursively (optax's ``chain`` closes over transforms that close over functions);
    a ``functools.partial`` and a bound method likewise; a tuple (NamedTuples included) or
    frozenset its type and items; a scalar its type and value; a jax array, or a read-only
    numpy one, of at most 64 KiB its dtype, shape and bytes. Anything else (lists, dicts and
    writable arrays, which can change after being keyed; tracers; unknown objects; a cycle) is
    keyed by its identity, so two different transforms are never conflated. Like ``jax.jit``,
    the key assumes closed-over cells are not rebound later.
    """
    def inner(value):
        return fingerprint(value, _seen | {id(obj)})

    if id(obj) in _seen:
        return ("id", id(obj))
    if isinstance(obj, types.FunctionType):
        cells = tuple(inner(_contents(c)) for c in obj.__closure__ or ())
        return ("function", obj.__code__, id(obj.__globals__), inner(obj.__defaults__),
                inner(tuple(sorted((obj.__kwdefaults__ or {}).items()))), cells)
    if isinstance(obj, functools.partial):
        return ("partial", inner(obj.func), inner(obj.args), inner(tuple(sorted(obj.keywords.items()))))
    if isinstance(obj, types.MethodType):
        return ("method", inner(obj.__func__), inner(obj.__self__))
    if isinstance(obj, (tuple, frozenset)):
        items = sorted(map(inner, obj), key=repr) if isinstance(obj, frozenset) else map(inner, obj)
        return (type(obj), tuple(items))
    if isinstance(obj, _SCALARS):
        return (type(obj), obj)
    if isinstance(obj, (jax.Array, np.ndarray)) and not isinstance(obj, jax.core.Tracer):
        frozen = isinstance(obj, jax.Array) or not obj.flags.writeable
        if frozen and obj.nbytes <= _SMALL_ARRAY:
            return ("array", type(obj), str(obj.dtype), obj.shape, np.asarray(obj).tobytes())
    if isinstance(obj, ByConfig) or isinstance(obj, (type, np.dtype)):
        return ("value", obj)  # compares by its configuration, or is a type
    return ("id", id(obj))


_EMPTY = object()  # the contents of a closure cell not yet assigned


def _contents(cell) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY


@dataclasses.dataclass(frozen=True, eq=False)
class Optimizer(ByConfig):
    """A pair of pure functions over pytrees.

    Attributes:
        init: ``init(params) -> state``.
        update: ``update(grads, state, params=None) -> (updates, state)``; the updates are
            signed, ready for ``apply_updates``.
        config: what the optimizer was built from, ``(factory, arguments)``, when a factory
            built it (``None`` for one built by hand); it decides equality and hashing.

    ``init, update = opt`` unpacks it like optax's ``GradientTransformation``.

    Example:
        >>> from fnann.optim import adam
        >>> adam(1e-3) == adam(lr=0.001), hash(adam(1e-3)) == hash(adam(1e-3))
        (True, True)
        >>> adam(1e-3) == adam(1e-2)
        False
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]
    config: Hashable | None = None
    _functions = ("init", "update")

    def __iter__(self):
        return iter((self.init, self.update))

    def __repr__(self):
        if self.config is None:
            return f"Optimizer(init={self.init!r}, update={self.update!r})"
        name, args = self.config
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in args)})"


def _freeze(value: Any) -> Any:
    """Lists as tuples and dicts as sorted item tuples, so a configuration can be hashed."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def configured(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a factory so that what it builds compares and hashes by its arguments.

    The result's ``config`` becomes ``(factory name, ((argument, value), ...))`` with every
    default filled in, so ``adam(1e-3)`` and ``adam(lr=0.001, b1=0.9)`` are equal. When an
    argument cannot be hashed (a traced or array hyperparameter, a list of arrays) the config
    is ``None`` and equality falls back to identity. The factory must return a ``ByConfig``
    dataclass (an ``Optimizer`` or a schedule).
    """
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def build(*args, **kwargs):
        result = factory(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        config = (factory.__name__, _freeze(tuple(bound.arguments.items())))
        try:
            hash(config)
        except TypeError:
            config = None
        return dataclasses.replace(result, config=config)

    return build


_TEXTBOOK: dict[str, Callable[..., Optimizer]] = {}
OPTIMIZERS: Mapping[str, Callable[..., Optimizer]] = MappingProxyType(_TEXTBOOK)
"""The textbook optimizers by name (``"sgd"``, ``"adam"``, ...): each factory as
:func:`textbook` registered it, with ``.equations`` (its update rule as text, which
``fnann explain`` prints) and ``.default_lr`` (the rate ``fnann train`` starts from); its
hyperparameters are its signature's arguments after ``lr``."""


def textbook(*equations: str, default_lr: float) -> Callable[[Callable[..., Optimizer]], Callable[..., Optimizer]]:
    """Decorates an optimizer factory: :func:`configured`, and registered in ``OPTIMIZERS``
    under its name with its update ``equations`` and ``default_lr``, so the command line
    (``fnann train --optimizer``, ``fnann explain``) and checkpoints know it from this one place.
    """
    def register(factory: Callable[..., Optimizer]) -> Callable[..., Optimizer]:
        built = configured(factory)
        built.equations, built.default_lr = tuple(equations), float(default_lr)
        _TEXTBOOK[factory.__name__] = built
        return built

    return register


_GRADIENT_ONLY: set[str] = set()


def gradient_transform(factory: Callable[..., Optimizer]) -> Callable[..., Optimizer]:
    """Decorates the factory of a transform that only reshapes the gradient (clipping, L2
    decay) and takes no learning-rate step: :func:`configured`, and known to :func:`descends`."""
    _GRADIENT_ONLY.add(factory.__name__)
    return configured(factory)


def descends(opt: Any) -> bool | None:
    """Whether ``opt``'s updates take a descent step (-eta times something): ``False`` for one
    of fnann's gradient-only transforms, or a ``chain`` of nothing else (its updates are the
    gradient itself, so ``apply_updates`` would climb the loss); ``True`` when it holds one of
    fnann's optimizers; ``None`` when fnann cannot tell (optax, or built by hand).
    """
    config = getattr(opt, "config", None)
    if not isinstance(opt, Optimizer) or config is None:
        return None
    name, args = config
    if name in _GRADIENT_ONLY:
        return False
    if name == "loss_scaling":  # descends as the optimizer it wraps
        return descends(dict(args)["opt"])
    if name == "chain":
        inner = [descends(t) for _, value in args for t in (value if isinstance(value, tuple) else (value,))]
        return None if None in inner and True not in inner else any(inner)
    return True


def equations(opt: Any) -> tuple[str, ...]:
    """The update equations of a textbook optimizer built by its factory, else ``()``."""
    config = getattr(opt, "config", None)
    factory = _TEXTBOOK.get(config[0]) if config else None
    return factory.equations if factory is not None else ()


def as_optimizer(opt: Any, name: str = "opt") -> Optimizer:
    """``opt`` as an ``Optimizer``: itself, or any object with optax's ``init``/``update``.

    An optax ``GradientTransformation`` (or anything with callable ``init(params)`` and
    ``update(updates, state, params)``) is wrapped; wrapping it, or a fresh equal one (the
    same code over equal values: :func:`fingerprint`), twice gives equal optimizers, so
    compiled functions cached for it are reused.

    Raises:
        TypeError: ``opt`` has no callable ``init`` and ``update``.
    """
    if isinstance(opt, Optimizer):
        return opt
    init, update = getattr(opt, "init", None), getattr(opt, "update", None)
    if callable(init) and callable(update):
        return Optimizer(init, update)
    raise TypeError(
        f"{name} must be an optimizer with init(params) and update(grads, state, params), "
        f"like fnann.optim.adam(1e-3) or an optax GradientTransformation; got {type(opt).__name__}."
    )


@register_checkpoint_type
class EmptyState(NamedTuple):
    """The state of a stateless transform (``clip_by_global_norm``)."""


# --------------------------------------------------------------------------------------
# Tree plumbing, in one place.
# --------------------------------------------------------------------------------------


def check_real(tree: Any, name: str) -> None:
    """Raise TypeError if a leaf of ``tree`` is complex: fnann's optimizers are written for real
    numbers (Adam's v would need |g|², not g², and comparisons have no meaning), so complex
    params or gradients are refused rather than half-supported."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if jnp.iscomplexobj(leaf):
            raise TypeError(f"{name}{jax.tree_util.keystr(path)} is complex ({jnp.result_type(leaf)}); fnann's "
                            "optimizers and networks are real-valued: split a complex parameter into its real "
                            "and imaginary parts as two real arrays.")


def check_like(tree: Any, reference: Any, name: str, reference_name: str) -> None:
    """Raise ValueError unless ``tree`` has the structure and leaf shapes of ``reference``
    (and TypeError if either holds a complex leaf: :func:`check_real`)."""
    check_real(tree, name)
    check_real(reference, reference_name)
    tree_def, ref_def = jax.tree.structure(tree), jax.tree.structure(reference)
    if tree_def != ref_def:
        raise ValueError(
            f"{name} does not have the tree structure of {reference_name}.\n"
            f"  {name}: {tree_def}\n  {reference_name}: {ref_def}\n"
            f"Pass {name} shaped exactly like the params the optimizer was initialised "
            "with, as jax.grad of a loss with respect to those params returns them."
        )
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    for (path, leaf), ref_leaf in zip(leaves, jax.tree.leaves(reference)):
        if jnp.shape(leaf) != jnp.shape(ref_leaf):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {jnp.shape(leaf)} but "
                f"{reference_name} has shape {jnp.shape(ref_leaf)} there."
            )


def tree_map_checked(
    fn: Callable[..., jax.Array], grads: Grads, *trees: Any, params: Params | None = None
) -> Any:
    """``jax.tree.map(fn, grads, *trees)`` after checking that the trees match ``grads``.

    Every tree in ``trees`` (optimizer state) and ``params`` (when given) must have the tree
    structure and leaf shapes of ``grads``; otherwise a ValueError names ``grads`` and prints
    both structures. The check is static, so it runs at trace time under ``jit``.

    Example:
        >>> g, v = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
        >>> tree_map_checked(lambda g, v: g + v, g, v)
        {'w': Array([1., 1.], dtype=float32)}
    """
    check_real(grads, "grads")
    for tree in trees:
        check_like(grads, tree, "grads", "the optimizer state")
    if params is not None:
        check_like(grads, params, "grads", "params")
    return jax.tree.map(fn, grads, *trees)


def tree_zeros_like(tree: Params) -> Params:
    """Zeros with the shape and dtype of every leaf (the initial moments).

    Example:
        >>> tree_zeros_like({"b": jnp.ones(2, jnp.bfloat16)})
        {'b': Array([0, 0], dtype=bfloat16)}
    """
    check_real(tree, "params")
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.result_type(x)), tree)


def moment_dtype(dtype: Any) -> jnp.dtype:
    """The dtype an optimizer keeps a moment of a ``dtype`` parameter in: at least float32.

    Example:
        >>> moment_dtype(jnp.float16), moment_dtype(jnp.float32)
        (dtype('float32'), dtype('float32'))
    """
    return jnp.promote_types(dtype, jnp.float32)


def tree_moments_like(tree: Params) -> Params:
    """Zero moments for ``tree``: its shapes, in ``moment_dtype`` of each leaf.

    Example:
        >>> tree_moments_like({"b": jnp.ones(2, jnp.bfloat16)})
        {'b': Array([0., 0.], dtype=float32)}
    """
    check_real(tree, "params")
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), moment_dtype(jnp.result_type(x))), tree)


def tree_ema(
    grads: Grads, moment: Params, decay: float, power: int = 1, params: Params | None = None
) -> Params:
    """Exponential moving average of ``grads ** power``, computed and kept in each moment's dtype.

    Math: moment_t = decay * moment_{t-1} + (1 - decay) * g_t ** power, leafwise.

    Example:
        >>> tree_ema({"w": jnp.array([2.0])}, {"w": jnp.array([1.0])}, decay=0.9, power=2)
        {'w': Array([1.3], dtype=float32)}
    """
    return tree_map_checked(
        lambda g, m: (decay * m + (1 - decay) * g.astype(m.dtype) ** power).astype(m.dtype),
        grads,
        moment,
        params=params,
    )


def cast_like(x: jax.typing.ArrayLike, like: jax.Array) -> jax.Array:
    """A scalar in the dtype of ``like`` (so a float32 schedule never promotes bfloat16)."""
    return jnp.asarray(x).astype(jnp.result_type(like))


def lr_at(lr: ScalarOrSchedule, step: jax.Array) -> jax.typing.ArrayLike:
    """The learning rate of update number ``step`` (0 for the first update)."""
    return lr(step) if callable(lr) else lr


def one_minus_power(b: Any, t: jax.Array) -> jax.Array:
    """1 - b^t for a decay b in [0, 1), accurate even in float32.

    Evaluated as -expm1(t ln b) with ln b taken in double precision. The direct float32
    form rounds b first: 1 - float32(0.999) = 0.00099998713, 1.3e-5 relative error.
    """
    if isinstance(b, float):
        log_b = math.log(b) if b > 0 else -math.inf
    else:
        log_b = jnp.log(b)
    return -jnp.expm1(jnp.asarray(t, dtype=float) * log_b)


def zero_step() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Add ``updates`` to ``params`` leafwise, keeping each parameter's dtype.

    Math: theta <- theta + u (the updates already carry the minus sign of descent).

    Raises:
        ValueError: if ``updates`` does not have the tree structure and leaf shapes of
            ``params``.

    Example:
        >>> apply_updates({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([-0.5, 0.5])})
        {'w': Array([0.5, 2.5], dtype=float32)}
    """
    check_like(updates, params, "updates", "params")
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


def global_norm(tree: Any) -> jax.Array:
    """The Euclidean norm of all leaves together, sqrt(sum_leaves sum(x^2)).

    The sum is accumulated in at least float32 (a bfloat16 sum of squares would lose most
    of its digits); the result is a scalar.

    Example:
        >>> global_norm({"a": jnp.array([3.0]), "b": (jnp.array([4.0]),)})
        Array(5., dtype=float32)
    """
    sums = [
        jnp.sum(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32))))
        for x in map(jnp.asarray, jax.tree.leaves(tree))
    ]
    return jnp.sqrt(sum(sums)) if sums else jnp.zeros([], jnp.float32)


# --------------------------------------------------------------------------------------
# Argument checks at construction (a traced hyperparameter, e.g. under vmap over lr,
# cannot be checked by value and is passed through).
# --------------------------------------------------------------------------------------


def as_float(name: str, value: Any) -> float | None:
    """``value`` as a Python float; None when it is traced. TypeError if not a real scalar."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) or (hasattr(value, "dtype") and jnp.ndim(value) == 0)
    ):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value)}.")
    try:
        return float(value)
    except jax.errors.ConcretizationTypeError:
        return None


def check_hyperparameter(name: str, value: Any, low: float = 0.0, high: float = math.inf, *,
                         low_open: bool = False, high_open: bool = False, finite: bool = True) -> Any:
    """``value`` as a float in the range (``fnann.checks.in_range``), or ``value`` itself when it
    is traced (a hyperparameter under ``vmap`` cannot be checked by value)."""
    x = as_float(name, value)
    if x is None:
        return value
    if not checks.in_range(x, low, high, low_open=low_open, high_open=high_open, finite=finite):
        raise ValueError(f"{name} must {checks.describe_range(low, high, low_open, high_open, finite)}; "
                         f"got {name}={value!r}.")
    return x


def check_lr(lr: Any) -> ScalarOrSchedule:
    """A learning rate: a schedule (any callable) as it is, else a finite number >= 0."""
    if callable(lr):
        return lr
    try:
        return check_hyperparameter("lr", lr)
    except TypeError:
        raise TypeError(f"lr must be a float or a schedule (a callable step -> lr); got {lr!r}.") from None


def check_decay(name: str, value: Any) -> Any:
    """A decay rate (b1, b2, beta, gamma) in [0, 1)."""
    return check_hyperparameter(name, value, 0.0, 1.0, high_open=True)


def check_positive(name: str, value: Any, allow_inf: bool = False) -> Any:
    """A constant > 0 (eps, max_norm); finite unless ``allow_inf``."""
    return check_hyperparameter(name, value, 0.0, low_open=True, finite=not allow_inf)


def check_nonnegative(name: str, value: Any) -> Any:
    """A finite constant >= 0 (a weight decay)."""
    return check_hyperparameter(name, value, 0.0)


def is_zero(value: Any) -> bool:
    """Whether a hyperparameter is statically zero (a traced one never is: it may not be)."""
    return isinstance(value, (int, float)) and value == 0
