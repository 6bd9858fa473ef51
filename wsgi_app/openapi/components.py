"""Shared schemas of the OpenAPI document: recurring objects become ``$ref``s.

The services declare their response schemas as plain dicts (the one source).
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

REF_PREFIX = "#/components/schemas/"


def named_schemas() -> dict[str, dict[str, Any]]:
    """Name -> schema of every shared object (imported here: services import nothing of this)."""
    from wsgi_app.services.chat import contacts as chat_contacts
    from wsgi_app.services.chat import messages as chat
    from wsgi_app.services.location import nearby
    from wsgi_app.services.profile import hot_list, labels, photos, profiles, visits
    from wsgi_app.services.social import blocks
    from wsgi_app.services.vip import schemas as vip_schemas

    return {
        "Profile": profiles.PROFILE_SCHEMA,
        "NearbyPerson": nearby.NEARBY_ITEM_SCHEMA,
        "NearbyPage": nearby.NEARBY_SCHEMA,
        "Message": chat.MESSAGE_SCHEMA,
        "PeerSummary": chat_contacts.PEER_SUMMARY_SCHEMA,
        "Photo": photos.PHOTO_SCHEMA,
        "PhotoList": photos.PHOTO_LIST_SCHEMA,
        "Label": labels.LABEL_SCHEMA,
        "LabelPage": labels.LABEL_PAGE_SCHEMA,
        "HotPage": hot_list.HOT_PAGE_SCHEMA,
        "Visitor": visits.VISITOR_SCHEMA,
        "VisitorPage": visits.VISITOR_PAGE_SCHEMA,
        "BlockPage": blocks.BLOCK_PAGE_SCHEMA,
        "Product": vip_schemas.PRODUCT_SCHEMA,
        "ProductList": vip_schemas.PRODUCT_LIST_SCHEMA,
        "Order": vip_schemas.ORDER_SCHEMA,
        "OrderPage": vip_schemas.ORDER_PAGE_SCHEMA,
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
