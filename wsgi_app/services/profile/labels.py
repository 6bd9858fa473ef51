"""Labels: the catalogue (seeded by ``flask labels seed``) and the set on each profile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

from wsgi_app import transactions
from wsgi_app.errors import OBJECT_NOT_FOUND, PARAM_INVALID, USER_NOT_FOUND, ApiError
from wsgi_app.extensions import db
from wsgi_app.models.social import Label, UserLabel
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.profile.visibility import can_view_profile

MAX_LABELS_PER_USER = 20

CATALOGUE: dict[str, tuple[str, ...]] = {
    "hobby": (
        "旅行",
        "摄影",
        "美食",
        "电影",
        "音乐",
        "阅读",
        "健身",
        "跑步",
        "游泳",
        "篮球",
        "足球",
        "羽毛球",
        "瑜伽",
        "徒步",
        "露营",
        "滑雪",
        "骑行",
        "烘焙",
        "绘画",
        "书法",
        "吉他",
        "钢琴",
        "唱歌",
        "跳舞",
        "游戏",
        "动漫",
        "桌游",
        "咖啡",
        "茶艺",
        "宠物",
    ),
    "personality": (
        "开朗",
        "温柔",
        "幽默",
        "安静",
        "直率",
        "细心",
        "独立",
        "浪漫",
        "靠谱",
        "慢热",
        "乐观",
        "宅",
        "文艺",
        "理性",
        "感性",
    ),
    "lifestyle": (
        "早睡早起",
        "夜猫子",
        "不抽烟",
        "偶尔喝酒",
        "素食",
        "爱做饭",
        "爱干净",
        "工作狂",
        "喜欢小孩",
        "有猫",
        "有狗",
        "经常出差",
    ),
    "looking_for": ("认真恋爱", "以结婚为目的", "交朋友", "找饭搭子", "找旅伴", "语言交换"),
}


def label_data(label: Label) -> dict[str, Any]:
    return {"label_id": label.id, "name": label.name, "category": label.category}


def seed_catalogue() -> int:
    """Insert the catalogue labels that are missing; returns how many were added (idempotent)."""
    existing = set(db.session.execute(db.select(Label.name)).scalars())
    added = 0
    for category, names in CATALOGUE.items():
        for name in names:
            if name not in existing:
                db.session.add(Label(name=name, category=category))
                existing.add(name)
                added += 1
    db.session.commit()
    return added


def catalogue_page(page: int, page_count: int, category: str | None = None) -> dict[str, Any]:
    query = db.select(Label)
    if category is not None:
        query = query.where(Label.category == category)
    total = db.session.execute(db.select(func.count()).select_from(query.subquery())).scalar_one()
    labels = db.session.execute(
        query.order_by(Label.id).offset((page - 1) * page_count).limit(page_count)
    ).scalars()
    return {
        "total": total,
        "list": [label_data(label) for label in labels],
        "has_next": page * page_count < total,
    }


def parse_id_list(raw: str, name: str, *, allow_empty: bool = False) -> list[int]:
    """``"3,1,2"`` -> ``[3, 1, 2]`` (the contract counts only the first value of a repeated name)."""
    parts = [part.strip() for part in raw.split(",")]
    if parts == [""] and allow_empty:
        return []
    if any(not part.isascii() or not part.isdigit() or len(part) > 12 for part in parts):
        raise ApiError(PARAM_INVALID, f"{name}: comma-separated positive integers")
    values = [int(part) for part in parts]
    if any(value < 1 for value in values):
        raise ApiError(PARAM_INVALID, f"{name}: ids start at 1")
    return values


def user_labels(user_id: int) -> list[Label]:
    return list(
        db.session.execute(
            db.select(Label)
            .join(UserLabel, UserLabel.label_id == Label.id)
            .where(UserLabel.user_id == user_id)
            .order_by(Label.id)
        ).scalars()
    )


def labels_of(viewer_id: int, peer_id: int | None) -> dict[str, Any]:
    """A user's labels; another's only when their profile is visible to the viewer (else 501)."""
    owner_id = viewer_id if peer_id is None else peer_id
    owner = get_user(owner_id)
    if not can_view_profile(viewer_id, owner):
        raise ApiError(USER_NOT_FOUND)
    return {"user_id": owner_id, "list": [label_data(label) for label in user_labels(owner_id)]}


def set_labels(user_id: int, label_ids: list[int]) -> dict[str, Any]:
    """Replace the caller's label set; all ids must exist, at most :data:`MAX_LABELS_PER_USER`."""
    wanted = list(dict.fromkeys(label_ids))
    if len(wanted) > MAX_LABELS_PER_USER:
        raise ApiError(PARAM_INVALID, f"labelIds: at most {MAX_LABELS_PER_USER} labels")
    found = (
        set(db.session.execute(db.select(Label.id).where(Label.id.in_(wanted))).scalars())
        if wanted
        else set()
    )
    missing = [label_id for label_id in wanted if label_id not in found]
    if missing:
        raise ApiError(OBJECT_NOT_FOUND, f"no such label: {missing[0]}")
    get_user(user_id)

    def replace_labels() -> None:
        db.session.execute(db.delete(UserLabel).where(UserLabel.user_id == user_id))
        if wanted:
            db.session.execute(
                db.insert(UserLabel), [{"user_id": user_id, "label_id": lid} for lid in wanted]
            )

    transactions.write(replace_labels, what="labels")
    return {"user_id": user_id, "list": [label_data(label) for label in user_labels(user_id)]}
