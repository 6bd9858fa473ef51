"""Positions and nearby people: the ~1 km privacy grid, the per-cell index, the nearby page.

Invariants: no coordinates leave the server (positions are snapped to the grid,
distances are whole-km bands); a user who moves leaves the old cell at once;
hidden and blocked users never appear. URLs: ``/api/location/...``,
``/api/user/nearby/list``.
"""
