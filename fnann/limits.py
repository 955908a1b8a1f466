"""Bounds on the plain numbers fnann takes, importable without JAX: the library's doors
(``fnann.checks``) and the command line's argparse types (``fnann.app.options``) read them
here, so each bound is written once."""

MAX_SEED = 2**31 - 1
"""The largest seed: ``jax.random.key`` takes a traced seed (``fnann train`` seeds inside a
compiled program) as an int32 while x64 is off, and numpy's generators take any int >= 0."""
