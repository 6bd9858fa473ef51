"""Benchmarks: ``python -m bench [--quick] [case ...]`` (see ``bench/__main__.py``)."""
