"""The nearby query's cell loading: one pool job per missing cell at a time in a process
(after a cold start, neighbouring pages miss the same cells at once)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from async_handlers import nearby_query
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location.grid import Cell


class PoolStub:
    """Stands in for the context's pool: records each load and finishes it when told."""

    def __init__(self) -> None:
        self.loads: list[list[Cell]] = []
        self.release = asyncio.Event()

    async def run_blocking(self, fn: Any, cells: list[Cell]) -> dict[Cell, list[int]]:
        assert fn is nearby_cells.load_cells
        self.loads.append(list(cells))
        await self.release.wait()
        return {cell: [cell.row * 100 + cell.col] for cell in cells}


def test_pages_missing_the_same_cells_share_one_load_per_cell() -> None:
    a, b, c = Cell(1, 1), Cell(1, 2), Cell(2, 1)

    async def scenario() -> None:
        pool = PoolStub()
        first = asyncio.ensure_future(nearby_query.load_cells_once(pool, [a, b]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        second = asyncio.ensure_future(nearby_query.load_cells_once(pool, [b, c]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        pool.release.set()
        assert await first == {a: [101], b: [102]}
        assert await second == {b: [102], c: [201]}
        assert pool.loads == [[a, b], [c]]  # b was read once, by the first page's job
        assert not nearby_query._LOADING  # nothing kept once the jobs are done
        third = await nearby_query.load_cells_once(pool, [a])  # type: ignore[arg-type]
        assert third == {a: [101]} and pool.loads[-1] == [a]  # done loads are not reused

    asyncio.run(scenario())


def test_a_failed_load_fails_every_page_waiting_for_it_and_is_not_kept() -> None:
    cell = Cell(3, 3)

    class Failing:
        async def run_blocking(self, fn: Any, cells: list[Cell]) -> dict[Cell, list[int]]:
            await asyncio.sleep(0)
            raise RuntimeError("database down")

    async def scenario() -> None:
        pool = Failing()
        pages = [nearby_query.load_cells_once(pool, [cell]) for _ in range(2)]  # type: ignore[arg-type]
        results = await asyncio.gather(*pages, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert not nearby_query._LOADING

    asyncio.run(scenario())
    with pytest.raises(RuntimeError):
        asyncio.run(nearby_query.load_cells_once(Failing(), [cell]))  # type: ignore[arg-type]
