"""Between users: blocks (both ways: neither sees the other anywhere) and reports.

URLs: ``/api/block/...``, ``/api/report/...``.
"""
