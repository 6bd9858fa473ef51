"""Framework-neutral endpoint declarations: what an endpoint takes, answers and may fail with.

Both request paths read these: the Flask ``@endpoint`` decorator
(:mod:`wsgi_app.api.endpoint`) and the native Tornado handlers
(:mod:`async_handlers`, through :mod:`wsgi_app.native_endpoints`); the OpenAPI
builder (:mod:`wsgi_app.openapi`) documents them. Invariant: this module imports
neither Flask nor Tornado, only the parameter and error tables below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from wsgi_app.errors import ErrorSpec
from wsgi_app.params import Param

# "none": unsigned; "app": signed by a calling application; "user": signed and signed in.
AuthLevel = Literal["none", "app", "user"]


@dataclass(frozen=True)
class EndpointSpec:
    summary: str
    params: tuple[Param, ...] = ()
    auth: AuthLevel = "user"
    data_schema: dict[str, Any] | None = None
    errors: tuple[ErrorSpec, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = field(default=())


# The page/pageCount parameters every paginated list shares (the contract's hot-list style).
MAX_PAGE_COUNT = 50
PAGE = Param("page", "integer", default=1, minimum=1, maximum=100_000, description="1-based page number")
PAGE_COUNT = Param(
    "pageCount", "integer", default=10, minimum=1, maximum=MAX_PAGE_COUNT, description="items per page"
)
PAGINATION = (PAGE, PAGE_COUNT)
