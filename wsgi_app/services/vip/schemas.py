"""JSON schemas of the VIP endpoints' ``data`` (documented in the OpenAPI document)."""

from __future__ import annotations

from typing import Any

ORDER_STATUSES = ("pending", "paid", "failed")

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["product_id", "code", "name", "days", "price_cents", "currency"],
    "properties": {
        "product_id": {"type": "integer"},
        "code": {"type": "string"},
        "name": {"type": "string"},
        "days": {"type": "integer"},
        "price_cents": {"type": "integer", "description": "price in the currency's smallest unit"},
        "currency": {"type": "string", "description": "ISO 4217"},
    },
}
PRODUCT_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["list"],
    "properties": {"list": {"type": "array", "items": PRODUCT_SCHEMA}},
}
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "order_no",
        "product_id",
        "amount_cents",
        "currency",
        "days",
        "status",
        "created_at",
        "paid_at",
    ],
    "properties": {
        "order_no": {"type": "string"},
        "product_id": {"type": "integer"},
        "amount_cents": {"type": "integer"},
        "currency": {"type": "string"},
        "days": {"type": "integer"},
        "status": {"type": "string", "enum": list(ORDER_STATUSES)},
        "created_at": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, UTC"},
        "paid_at": {"type": ["string", "null"], "description": "YYYY-MM-DD HH:MM:SS, UTC"},
    },
}
NEW_ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*ORDER_SCHEMA["required"], "payment"],
    "properties": {
        **ORDER_SCHEMA["properties"],
        "payment": {
            "type": "object",
            "required": ["provider"],
            "description": "what the client hands to the payment provider's SDK",
            "properties": {"provider": {"type": "string"}},
        },
    },
}
ORDER_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "list", "has_next"],
    "properties": {
        "total": {"type": "integer"},
        "list": {"type": "array", "items": ORDER_SCHEMA},
        "has_next": {"type": "boolean"},
    },
}
VIP_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["is_vip", "vip_expires_at"],
    "properties": {
        "is_vip": {"type": "boolean"},
        "vip_expires_at": {"type": ["string", "null"], "description": "YYYY-MM-DD HH:MM:SS, UTC"},
    },
}
CALLBACK_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_no", "status"],
    "properties": {
        "order_no": {"type": "string"},
        "status": {"type": "string", "enum": list(ORDER_STATUSES)},
    },
}
