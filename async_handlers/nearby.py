"""``GET /api/user/nearby/list``: nearby people, a native handler.

After authentication the whole query (rate limit, position, the ring of cells
from Redis or the database, the page's cards) is one job on the worker pool,
:func:`wsgi_app.services.nearby.find_page`: one database session and one
teardown per page, nothing blocking on the event loop, and Redis does O(cells)
work per page (one ``MGET`` per stage of bands), never a sort. The logic and
the privacy rules live in :mod:`wsgi_app.services.nearby`,
:mod:`wsgi_app.services.nearby_cells` and :mod:`wsgi_app.services.location`.
"""

from __future__ import annotations

from async_handlers.base import NativeApiHandler
from wsgi_app.api.endpoint import EndpointSpec
from wsgi_app.api.pagination import PAGINATION
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services import nearby

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
        page = await self.context.run_blocking(
            nearby.find_page,
            caller.user_id,
            args.get("latlng"),
            args["radius"],
            args["page"],
            args["page_count"],
        )
        self.send_success(page)
