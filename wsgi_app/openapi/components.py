"""Shared schemas of the OpenAPI document: recurring objects become ``$ref``s.

Each area declares its response schemas as plain dicts in its ``schemas`` module (the one source).
:func:`use_components` names the objects that recur across operations
(profile, message, photo, label, order, pages, the error envelope, ...) in
``components/schemas`` and replaces every occurrence, at any depth, by a
``$ref``; a client generator then makes one model per object instead of one
per operation. Matching is by value, so copies of a schema match too. A
named schema never refers to itself.
"""

from __future__ import annotations

import json
from typing import Any

from wsgi_app.services.chat import schemas as chat_schemas
from wsgi_app.services.events import schemas as event_schemas
from wsgi_app.services.location import schemas as location_schemas
from wsgi_app.services.matching import schemas as matching_schemas
from wsgi_app.services.profile import schemas as profile_schemas
from wsgi_app.services.social import schemas as social_schemas
from wsgi_app.services.vip import schemas as vip_schemas

REF_PREFIX = "#/components/schemas/"


def named_schemas() -> dict[str, dict[str, Any]]:
    """Name -> schema of every shared object (each area's ``schemas`` module is the one source)."""
    return {
        "Profile": profile_schemas.PROFILE_SCHEMA,
        "NearbyPerson": location_schemas.NEARBY_ITEM_SCHEMA,
        "NearbyPage": location_schemas.NEARBY_SCHEMA,
        "Message": chat_schemas.MESSAGE_SCHEMA,
        "PeerSummary": chat_schemas.PEER_SUMMARY_SCHEMA,
        "Photo": profile_schemas.PHOTO_SCHEMA,
        "PhotoList": profile_schemas.PHOTO_LIST_SCHEMA,
        "Label": profile_schemas.LABEL_SCHEMA,
        "LabelPage": profile_schemas.LABEL_PAGE_SCHEMA,
        "HotPage": profile_schemas.HOT_PAGE_SCHEMA,
        "Visitor": profile_schemas.VISITOR_SCHEMA,
        "VisitorPage": profile_schemas.VISITOR_PAGE_SCHEMA,
        "BlockPage": social_schemas.BLOCK_PAGE_SCHEMA,
        "Product": vip_schemas.PRODUCT_SCHEMA,
        "ProductList": vip_schemas.PRODUCT_LIST_SCHEMA,
        "Order": vip_schemas.ORDER_SCHEMA,
        "OrderPage": vip_schemas.ORDER_PAGE_SCHEMA,
        "Presence": profile_schemas.PRESENCE_SCHEMA,
        "Event": event_schemas.EVENT_SCHEMA,
        "EventPage": event_schemas.EVENTS_POLL_SCHEMA,
        "MatchPage": matching_schemas.MATCH_PAGE_SCHEMA,
        "LikePage": matching_schemas.RECEIVED_PAGE_SCHEMA,
        **{
            f"{kind.capitalize()}Event": payload
            for kind, payload in event_schemas.EVENT_PAYLOADS.items()
            if payload is not chat_schemas.MESSAGE_SCHEMA
        },
    }


def _key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True)


def _replace(node: Any, by_key: dict[str, str], skip: str | None) -> Any:
    if isinstance(node, dict):
        name = by_key.get(_key(node))
        if name is not None and name != skip:
            return {"$ref": REF_PREFIX + name}
        return {k: _replace(v, by_key, skip) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, by_key, skip) for v in node]
    return node


def use_components(
    paths: dict[str, Any], extra: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(paths, components/schemas)`` with every shared object replaced by a ``$ref``."""
    schemas = {**named_schemas(), **extra}
    by_key = {_key(schema): name for name, schema in schemas.items()}
    components = {name: _replace(schema, by_key, skip=name) for name, schema in schemas.items()}
    return _replace(paths, by_key, skip=None), dict(sorted(components.items()))
