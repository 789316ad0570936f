"""The fast paths behind the layers of ``nanocnn.nn``: memory layout, convolution strategies, pooling kernels,
the eval-mode inference plan, and BLAS held at one thread. Nothing here is needed to understand the math
(``nanocnn.nn.reference`` is its specification); everything here gives exactly the numbers the tests
check against it. The backend imports nothing from ``nanocnn.nn``: the layers call it, never the reverse.
"""
