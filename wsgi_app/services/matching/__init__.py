"""Likes and matches (``/api/like``, ``/api/match``): a like is secret unless mutual; mutual is a match."""
