"""The page/pageCount parameters every paginated list shares (the contract's hot-list style)."""

from __future__ import annotations

from wsgi_app.params import Param

MAX_PAGE_COUNT = 50

PAGE = Param("page", "integer", default=1, minimum=1, maximum=100_000, description="1-based page number")
PAGE_COUNT = Param(
    "pageCount", "integer", default=10, minimum=1, maximum=MAX_PAGE_COUNT, description="items per page"
)
PAGINATION = (PAGE, PAGE_COUNT)
