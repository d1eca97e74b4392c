"""looseversion for Salt 3006.1 on Debian 12, which has no python3-looseversion.

Salt imports `looseversion.LooseVersion` (salt/utils/versions.py). Python 3.11
still ships distutils (deprecated, removed in 3.12), whose LooseVersion is the
class the looseversion package was copied from; re-export it and silence the
deprecation warning its import prints.
"""
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from distutils.version import LooseVersion  # noqa: F401

__all__ = ["LooseVersion"]
