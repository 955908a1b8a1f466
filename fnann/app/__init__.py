"""The application around the math: the ``fnann`` command line, datasets, plots and
checkpoint files. The math modules (activations, losses, mlp, backprop, optim, train)
never import from here.
"""
