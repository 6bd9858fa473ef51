"""ORM models, one module per aggregate; importing this package registers them all."""

from wsgi_app.models.application import Application
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.events import Event, EventCounter
from wsgi_app.models.location import UserLocation
from wsgi_app.models.matching import Like, Match
from wsgi_app.models.social import Block, Label, Photo, Report, UserLabel, Visit
from wsgi_app.models.user import AuthToken, User
from wsgi_app.models.vip import Order, Product

__all__ = [
    "Application",
    "AuthToken",
    "Block",
    "Contact",
    "Event",
    "EventCounter",
    "Label",
    "Like",
    "Match",
    "Message",
    "Order",
    "Photo",
    "Product",
    "Report",
    "User",
    "UserLabel",
    "UserLocation",
    "Visit",
]
