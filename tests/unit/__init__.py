"""Fast tests of one module each, in folders that mirror the package (``run/test_cache.py``
tests ``videodub/run/cache.py``)."""
