"""The ``fnann`` command line: ``fnann gradcheck`` (and ``train``, ``predict``, ``evaluate``)."""

from __future__ import annotations

import argparse
import sys


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.replace("x", ",").replace("-", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"malformed sizes {text!r}: give layer widths like 64,128,64,10") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"malformed sizes {text!r}: need at least two widths >= 1, like 64,128,64,10")
    return sizes


def _add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="verify the hand-derived gradients of a network",
                       description="Build a network, draw random data and compare the manual "
                       "gradients with jax.grad and central finite differences in float64.")
    p.add_argument("--sizes", type=_sizes, default=(64, 128, 64, 10),
                   help="layer widths, inputs first (default 64,128,64,10)")
    p.add_argument("--hidden", default="relu", help="hidden activation (default relu)")
    p.add_argument("--output", default="softmax", help="output activation (default softmax)")
    p.add_argument("--loss", default="cross_entropy", help="loss (default cross_entropy)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the random data")
    p.add_argument("--n-fd", type=int, default=32,
                   help="entries per array checked by finite differences (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_gradcheck)


def _run_gradcheck(args) -> int:
    import jax

    import fnann

    net = fnann.MLP(args.sizes, hidden=args.hidden, output=args.output)
    loss = fnann.get_loss(args.loss)
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}.")
    k_init, k_x, k_y = jax.random.split(jax.random.key(args.seed), 3)
    params = fnann.init(k_init, net)
    x = jax.random.normal(k_x, (args.batch, net.n_in))
    if loss.name == "cross_entropy":
        y = jax.random.randint(k_y, (args.batch,), 0, net.n_out)
    elif loss.name == "binary_cross_entropy":
        y = jax.random.bernoulli(k_y, 0.5, (args.batch, net.n_out)).astype(x.dtype)
    else:
        y = jax.random.normal(k_y, (args.batch, net.n_out))
    report = fnann.check_grads(net, loss, params, x, y, n_fd=args.n_fd or None, seed=args.seed)
    print(report)
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnann", description="The textbook feed-forward network in JAX, with "
        "hand-derived backprop verified against autodiff.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_gradcheck(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fnann`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        print(f"fnann {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
