"""``GET /api/user/nearby/list``: nearby people, a native handler.

After authentication the whole query (rate limit, position, the ring of cells
from Redis or the database, the page's cards) is one job on the worker pool,
:func:`wsgi_app.services.location.nearby.find_page`: one database session and one
teardown per page, nothing blocking on the event loop, and Redis does O(cells)
work per page (one ``MGET`` per stage of bands), never a sort. The logic and
the privacy rules live in :mod:`wsgi_app.services.location.nearby`,
:mod:`wsgi_app.services.location.nearby_cells` and :mod:`wsgi_app.services.location.positions`.
"""

from __future__ import annotations

from async_handlers.base import NativeApiHandler
from wsgi_app import native_endpoints
from wsgi_app.services.location import nearby


class NearbyListHandler(NativeApiHandler):
    endpoint_specs = {"GET": native_endpoints.NEARBY_LIST}

    async def get(self) -> None:
        caller = await self.authenticate_user()
        args = self.parse(list(native_endpoints.NEARBY_PARAMS))
        page = await self.context.run_blocking(
            nearby.find_page,
            caller.user_id,
            args.get("latlng"),
            args["radius"],
            args["page"],
            args["page_count"],
        )
        self.send_success(page)
