"""nginx's resend of a request (same ``X-Request-Id``) is not a nonce replay; anything else still is."""

from __future__ import annotations

from tests.helpers import ApiClient
from wsgi_app.errors import NONCE_REPLAYED


def test_a_resent_request_passes_only_with_the_same_request_id(api: ApiClient) -> None:
    signed = api.signed("GET", "/api/vip/products", {})

    def send(headers: dict[str, str]) -> tuple[int, int]:
        reply = api.transport.send("GET", "/api/vip/products", signed, None, headers)
        return reply.status, reply.code

    assert send({"X-Request-Id": "9f1c0c1e"}) == (200, 0)
    assert send({"X-Request-Id": "9f1c0c1e"}) == (200, 0)  # nginx retried it on another process
    assert send({"X-Request-Id": "0000aaaa"}) == (409, NONCE_REPLAYED.code)  # a replay through nginx
    assert send({}) == (409, NONCE_REPLAYED.code)


def test_without_a_request_id_a_nonce_is_spent_once(api: ApiClient) -> None:
    signed = api.signed("GET", "/api/vip/products", {})
    first = api.transport.send("GET", "/api/vip/products", signed, None, {})
    again = api.transport.send("GET", "/api/vip/products", signed, None, {"X-Request-Id": "late"})
    assert (first.status, again.status, again.code) == (200, 409, NONCE_REPLAYED.code)
