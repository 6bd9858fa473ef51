"""``GET /api/user/nearby/list``: nearby people, a native endpoint.

Authentication and the query both run on the event loop
(:mod:`async_handlers.nearby_query`): Redis through the lean wire, the
worker pool only for the database (cache misses).
Redis does O(cells) work per page (one ``MGET`` per stage of bands), never a
sort. The logic and the privacy rules live in
:mod:`wsgi_app.services.location.nearby`, :mod:`wsgi_app.services.location.nearby_cells`,
:mod:`wsgi_app.services.location.nearby_viewer` and :mod:`wsgi_app.services.location.positions`.

A GET is answered by :func:`answer` through the lean path
(:mod:`async_handlers.lean_get`, mounted by ``tornado_server``): no ``RequestHandler``.
:class:`NearbyListHandler` declares the endpoint, answers the ``OPTIONS`` preflight
and, where no lean path is mounted, the GET with the same :func:`page_envelope`.
"""

from __future__ import annotations

from collections.abc import Mapping

from async_handlers import nearby_query
from async_handlers.auth import authenticate_async
from async_handlers.base import NativeApiHandler, NativeContext
from async_handlers.lean_get import LeanCall
from wsgi_app import errors, native_endpoints
from wsgi_app.http_common import REQUEST_ID_HEADER
from wsgi_app.params import parse_params

PATH = "/api/user/nearby/list"


async def answer(context: NativeContext, call: LeanCall) -> str:
    """The envelope of a GET (the lean path's ``answer``): the request check, then the page."""
    params = call.params
    prefetched = nearby_query.prefetch_state(context, params)
    headers = call.request.headers
    caller = await authenticate_async(
        context,
        "GET",
        PATH,
        params,
        headers.get("Authorization"),
        need_user=True,
        retry_id=headers.get(REQUEST_ID_HEADER),
    )
    call.user_id = caller.signed_in().user_id
    return await page_envelope(context, call.user_id, params, prefetched)


async def page_envelope(
    context: NativeContext,
    user_id: int,
    params: Mapping[str, str],
    prefetched: tuple[int, nearby_query.StateRead] | None,
) -> str:
    """The envelope of the authenticated ``user_id``'s page (the parameters checked here)."""
    args = parse_params(list(native_endpoints.NEARBY_PARAMS), params)
    page = await nearby_query.find_page(
        context, user_id, args.get("latlng"), args["radius"], args["page"], args["page_count"], prefetched
    )
    if isinstance(page, str):  # the data as JSON text: the envelope around it, keys sorted
        return f'{{"code":0,"data":{page},"msg":"success"}}'
    return errors.dumps_envelope(errors.success_body(page))


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
        self.finish(await page_envelope(self.context, caller.user_id, self.raw_params(), prefetched))
