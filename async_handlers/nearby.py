"""``GET /api/user/nearby/list``: nearby people, a native handler.

Authentication and the query both run on the event loop
(:mod:`async_handlers.nearby_query`): Redis through ``redis.asyncio``, the
worker pool only for the database (cache misses).
Redis does O(cells) work per page (one ``MGET`` per stage of bands), never a
sort. The logic and the privacy rules live in
:mod:`wsgi_app.services.location.nearby`, :mod:`wsgi_app.services.location.nearby_cells`,
:mod:`wsgi_app.services.location.nearby_viewer` and :mod:`wsgi_app.services.location.positions`.
"""

from __future__ import annotations

from async_handlers import nearby_query
from async_handlers.base import NativeApiHandler
from wsgi_app import native_endpoints


class NearbyListHandler(NativeApiHandler):
    endpoint_specs = {"GET": native_endpoints.NEARBY_LIST}

    _raw: dict[str, str] | None = None

    def raw_params(self) -> dict[str, str]:
        """Decoded once per request (the state prefetch, the request check and the
        parameters all read them)."""
        if self._raw is None:
            self._raw = super().raw_params()
        return self._raw

    def compute_etag(self) -> None:
        """No ``ETag``: a personal, changing page (and hashing it cost ~2% of its CPU)."""
        return None

    async def get(self) -> None:
        prefetched = nearby_query.prefetch_state(self.context, self.raw_params())
        caller = await self.authenticate_user()
        args = self.parse(list(native_endpoints.NEARBY_PARAMS))
        page = await nearby_query.find_page(
            self.context,
            caller.user_id,
            args.get("latlng"),
            args["radius"],
            args["page"],
            args["page_count"],
            prefetched,
        )
        if isinstance(page, str):  # the data as JSON text: the envelope around it, keys sorted
            self.finish(f'{{"code":0,"data":{page},"msg":"success"}}')
        else:
            self.send_success(page)
