"""The privacy grid: ~1 km cells, their centres, distances and whole-km bands.

Pure functions, no I/O. Invariants:

- Rows are ``GRID_KM`` tall; row ``r`` is cut into a whole number of cells
  about ``GRID_KM`` wide at its latitude. A :class:`Cell` ``(row, col)`` and its
  centre (:func:`cell_centre`) determine each other: ``snap_to_grid`` of a
  centre gives that centre back, bit for bit, so stored positions can be found
  by equality on ``(lat, lng)``.
- Distances are between cell centres (haversine) and shown as whole-km bands:
  every answer about a user is a function of their cell only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRID_KM = 1.0
KM_PER_DEGREE_LAT = 111.32
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class GridPoint:
    """The centre of a grid cell: the only form in which positions are kept."""

    lat: float
    lng: float


@dataclass(frozen=True, order=True)
class Cell:
    """A grid cell: ``row`` counts rows north of the equator, ``col`` cells east of -180."""

    row: int
    col: int


def row_geometry(row: int, grid_km: float = GRID_KM) -> tuple[float, int, float]:
    """``(centre latitude, cells in the row, cell width in degrees)`` of a grid row."""
    centre_lat = (row + 0.5) * (grid_km / KM_PER_DEGREE_LAT)
    row_circumference_km = 360.0 * KM_PER_DEGREE_LAT * math.cos(math.radians(centre_lat))
    cells_in_row = max(1, math.floor(row_circumference_km / grid_km))
    return centre_lat, cells_in_row, 360.0 / cells_in_row


def cell_of(lat: float, lng: float, grid_km: float = GRID_KM) -> Cell:
    """The cell holding (lat, lng)."""
    row = math.floor(lat / (grid_km / KM_PER_DEGREE_LAT))
    _, cells_in_row, lng_step = row_geometry(row, grid_km)
    return Cell(row, min(math.floor((lng + 180.0) / lng_step), cells_in_row - 1))


def cell_centre(cell: Cell, grid_km: float = GRID_KM) -> GridPoint:
    """The stored form of every position inside ``cell``."""
    centre_lat, _, lng_step = row_geometry(cell.row, grid_km)
    return GridPoint(round(centre_lat, 7), round(-180.0 + (cell.col + 0.5) * lng_step, 7))


def snap_to_grid(lat: float, lng: float, grid_km: float = GRID_KM) -> GridPoint:
    """The centre of the ~``grid_km`` cell holding (lat, lng)."""
    return cell_centre(cell_of(lat, lng, grid_km), grid_km)


def distance_km(a: GridPoint, b: GridPoint) -> float:
    """Great-circle distance (haversine) between two points."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlng = lat2 - lat1, math.radians(b.lng - a.lng)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_band_km(km: float) -> int:
    """Whole km between two cell centres; 0 means "< 1 km" (the same cell)."""
    return int(math.floor(km + 0.5))


def distance_label(band_km: int) -> str:
    return "< 1 km" if band_km < 1 else f"{band_km} km"
