"""``GET /api/user/nearby/list``: nearby people, on the event loop.

Database work (rate limit, storing a reported position, visibility filter and
profile summaries) runs on the worker pool through ``run_blocking``; the geo
search is a non-blocking ``redis.asyncio`` GEOSEARCH. The logic and the privacy
rules live in :mod:`wsgi_app.services.nearby` and :mod:`wsgi_app.services.location`.
"""

from __future__ import annotations

from async_handlers.base import NativeApiHandler
from wsgi_app.api.endpoint import EndpointSpec
from wsgi_app.api.pagination import PAGINATION
from wsgi_app.errors import LATLNG_INVALID, LOCATION_REJECTED, RATE_LIMITED
from wsgi_app.params import Param
from wsgi_app.services import nearby
from wsgi_app.services.location import GEO_KEY

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
        centre = await self.context.run_blocking(nearby.prepare_query, caller.user_id, args.get("latlng"))
        if centre is None:
            self.send_success(nearby.not_located())
            return
        hits = await self.context.redis.geosearch(
            GEO_KEY,
            longitude=centre.lng,
            latitude=centre.lat,
            radius=args["radius"],
            unit="km",
            sort="ASC",
            count=nearby.MAX_CANDIDATES,
            withdist=True,
        )
        page = await self.context.run_blocking(
            nearby.build_page, caller.user_id, [(m, d) for m, d in hits], args["page"], args["page_count"]
        )
        self.send_success(page)
