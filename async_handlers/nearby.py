"""``GET /api/user/nearby/list``: nearby people, on the event loop.

Database work (rate limit, storing a reported position, reading uncached
cells, the page's profile cards) runs on the worker pool through
``run_blocking``; cached cells come from one non-blocking ``MGET`` per stage of
bands, so Redis does O(cells) work per page and never sorts anything. Ring
lists beyond the small memoised stages are computed on the pool too. The logic
and the privacy rules live in :mod:`wsgi_app.services.nearby`,
:mod:`wsgi_app.services.nearby_cells` and :mod:`wsgi_app.services.location`.
"""

from __future__ import annotations

from async_handlers.base import NativeApiHandler
from wsgi_app.api.endpoint import EndpointSpec
from wsgi_app.api.pagination import PAGINATION
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services import nearby, nearby_cells
from wsgi_app.services.grid import Cell
from wsgi_app.services.nearby_cells import Ranking

NEARBY_PARAMS = (
    Param(
        "latlng",
        max_length=64,
        error=LATLNG_INVALID,
        description='your position "lat,lng" (stored snapped to ~1 km); default: the last one reported',
    ),
    Param(
        "radius",
        "integer",
        default=nearby.DEFAULT_RADIUS_KM,
        minimum=1,
        maximum=nearby.MAX_RADIUS_KM,
        description="km",
    ),
    *PAGINATION,
)


class NearbyListHandler(NativeApiHandler):
    endpoint_specs = {
        "GET": EndpointSpec(
            summary="People near you, nearest first",
            params=NEARBY_PARAMS,
            errors=(LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED),
            data_schema=nearby.NEARBY_SCHEMA,
            description="Only people visible to everyone, never yourself or anyone blocked either "
            "way. Distances are whole-km bands between ~1 km grid cells; no coordinates are "
            f"returned. At most {nearby.MAX_CANDIDATES} people are considered per query.",
            tags=("nearby",),
        )
    }

    async def get(self) -> None:
        caller = await self.authenticate()
        args = self.parse(list(NEARBY_PARAMS))
        assert caller.user_id is not None
        query = await self.context.run_blocking(nearby.prepare_query, caller.user_id, args.get("latlng"))
        if query is None:
            self.send_success(nearby.not_located())
            return
        for attempt in range(2):
            ranking = await self._rank(query, args["radius"])
            result = await self.context.run_blocking(
                nearby.build_page, caller.user_id, ranking.candidates, args["page"], args["page_count"]
            )
            if not result.stale_cells or attempt == 1 or not self._cache_secs:
                break
            await self.context.redis.delete(*(nearby_cells.cell_key(c) for c in result.stale_cells))
        self.send_success(result.page)

    @property
    def _cache_secs(self) -> int:
        return nearby_cells.cache_secs(self.context.flask_app.config)

    async def _rank(self, query: nearby.NearbyQuery, radius_km: int) -> Ranking:
        """The first ``MAX_CANDIDATES`` people around the caller, stage by stage of bands."""
        ranking = Ranking(query.excluded, radius_km, nearby.MAX_CANDIDATES)
        for band_lo, band_hi in nearby_cells.stages(radius_km):
            if nearby_cells.is_small_stage(band_hi):
                stage = nearby_cells.ring(query.cell, band_lo, band_hi)
            else:
                stage = await self.context.run_blocking(nearby_cells.ring, query.cell, band_lo, band_hi)
            stage = ranking.within(stage)
            people = await self._people([cell for _, cell, _ in stage])
            ranking.add(stage, people)
            if ranking.full:
                break
        return ranking

    async def _people(self, cells: list[Cell]) -> list[str | list[int]]:
        """Each cell's people: cached copies by ``MGET`` (decoded only when ranked), the
        rest read on the pool."""
        values: list[str | None] = [None] * len(cells)
        if self._cache_secs:
            step = nearby_cells.MGET_CHUNK_KEYS
            for at in range(0, len(cells), step):
                keys = [nearby_cells.cell_key(cell) for cell in cells[at : at + step]]
                values[at : at + step] = await self.context.redis.mget(keys)
        missing = [cell for cell, value in zip(cells, values, strict=True) if value is None]
        loaded = await self.context.run_blocking(nearby_cells.load_cells, missing) if missing else {}
        return [loaded[cell] if value is None else value for cell, value in zip(cells, values, strict=True)]
