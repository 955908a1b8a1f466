"""The application around the library: the ``fnann`` command line, datasets and plots.
The library modules (activations, losses, mlp, backprop, optim, train, checkpoint) never
import from here, and the application imports only the library's public modules
(``tests/test_layering.py``).
"""
