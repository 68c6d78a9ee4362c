"""causal: what did a service change bring, in money, with honest uncertainty.

Start with ``causal run experiments/NAME.yaml`` or, in Python::

    from causal.spec import load_spec
    from causal.pipeline import analyse
    results = analyse(load_spec("experiments/extended_warranty_pilot.yaml"))
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("causal")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
