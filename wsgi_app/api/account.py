"""``/api/account``: deleting your account."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.services.auth import account
from wsgi_app.services.auth.request_auth import UserCaller

bp = Blueprint("account", __name__, url_prefix="/api/account")


@bp.route("/delete", methods=["POST"])
@endpoint(
    summary="Delete your account and everything about you",
    data_schema={
        "type": "object",
        "required": ["deleted_user_id"],
        "properties": {"deleted_user_id": {"type": "integer"}},
    },
    description="Removes profile, photos, labels, visits, location, blocks, contacts, messages and "
    "every token (this one too). Orders stay for the books and reports for the moderators, "
    "without your id. Signing in again with the same phone creates a new user.",
)
def delete(caller: UserCaller) -> dict[str, Any]:
    account.delete_account(caller.user_id)
    return {"deleted_user_id": caller.user_id}
