"""The request check without I/O: what to ask Redis for one request, and how to judge the answers.

Both executors use these pure functions and nothing else decides:
:mod:`wsgi_app.services.auth.request_auth` (sync, Flask side) and
:mod:`async_handlers.auth` (``redis.asyncio``, on the event loop). Each runs

1. :func:`required_appkey` -- the four signing parameters are present and the
   appkey has the format appkeys have (checked before any lookup, so a made-up
   2 MiB appkey never reaches a cache, the database or a Redis key);
2. the credentials lookup (a bounded per-process cache, the database on a miss);
3. :func:`plan_request` -- timestamp window and signature; only a correctly
   signed request gets a plan, so only it can spend a nonce;
4. ONE pipelined Redis round trip, :func:`redis_commands`: ``GET`` of the
   nonce store's epoch marker, ``SET <nonce key> NX EX`` (then ``GET`` it back
   when the request carries a retry id) and, when a user is needed,
   ``GET <token cache key>``; only when the marker is missing, a second round
   trip, :func:`epoch_commands` (see below);
5. :func:`judge` -- nonce replay first, then the epoch rule, then the token: a
   cached user id, the revoked marker, or a miss (``None``: read the database,
   then :func:`judge_user`).

**The nonce store fails safe when Redis loses its memory.** The marker
``nonce:epoch`` (no TTL) holds the time, in seconds, from which the store
remembers every spent nonce. An empty Redis (a restart without persistence, a
``FLUSHDB``) has no marker: the first request that sees it missing sets it to
*now* with ``SET NX`` (every process then reads the same value), and from then
on a request signed before the epoch is refused (508, "sign again"): it may have
been spent before the loss, and its nonce is gone. A request signed after the
epoch cannot have been spent before it. The cost of a loss: the requests signed
before it was noticed and answered after (those in flight) are refused once and
re-signed by their clients. A Sentinel failover may lose the last writes the old
primary had not yet sent to its replica while keeping the (old) marker:
whoever sees the primary change calls :func:`reset_epoch_commands`, which moves
the epoch to *now* (never back). The residual risk is a request signed with a
client clock *ahead* of the server's and spent in the moments before the loss
(``docs/operations.md``).

A nonce is spent once, except by the same proxied request: nginx sets a fresh
``X-Request-Id`` on every client request and resends it unchanged when it
retries the request on another process (one that stopped or died after
spending the nonce). The nonce key stores that id, and a request carrying the
same id passes again: a retry, not a replay (a replay through nginx gets a new
id). See docs/operations.md. Revocation overwrites the cache entry and fills use
   ``SET NX`` (:mod:`wsgi_app.services.auth.tokens`), so a logout always wins.

Error codes and their order are the API's: 300 (missing parameter), 507
(unknown appkey), 300/508 (timestamp), 506 (signature), 300 (nonce too long),
509 (nonce replayed), 504 (token missing, invalid, expired, or another user's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wsgi_app.errors import (
    APPKEY_UNKNOWN,
    NONCE_REPLAYED,
    PARAM_INVALID,
    TIMESTAMP_OUT_OF_WINDOW,
    TOKEN_INVALID,
    ApiError,
)
from wsgi_app.services.auth import signing
from wsgi_app.services.auth.applications import APPKEY_PATTERN, AppCredentials
from wsgi_app.services.auth.tokens import MAX_TOKEN_LENGTH, REVOKED_MARKER, cache_key, hash_token

SIGNING_PARAMS = ("appkey", "timestamp", "nonce", "sign")
NONCE_KEY_PREFIX = "nonce"
NONCE_EPOCH_KEY = "nonce:epoch"  # never a nonce key: those have two ':'
SIGNED_BEFORE_EPOCH = "timestamp from before the nonce store was reset, sign again"
# Moves the epoch to ARGV[1] unless it already is later (the epoch never goes back).
RESET_EPOCH_SCRIPT = (
    "local e = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if e < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end "
    "return redis.call('GET', KEYS[1])"
)
MAX_RETRY_ID_LENGTH = 64
Command = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the application, and the signed-in user when there is one."""

    app_id: int
    appkey: str
    user_id: int | None = None
    token_hash: str | None = None

    def signed_in(self) -> UserCaller:
        """This caller as a signed-in user. Only a request checked with a user has one; on any
        other this is a programming error, answered like a missing token, never a 500."""
        if self.user_id is None or self.token_hash is None:
            raise ApiError(TOKEN_INVALID, "token missing")
        return UserCaller(self.app_id, self.appkey, self.user_id, self.token_hash)


@dataclass(frozen=True, slots=True)
class UserCaller:
    """A signed-in caller: what every ``auth="user"`` endpoint receives (the user id is never None)."""

    app_id: int
    appkey: str
    user_id: int
    token_hash: str


@dataclass(frozen=True, slots=True)
class AuthPlan:
    """What one correctly signed request asks Redis, and what judging it needs."""

    app_id: int
    appkey: str
    nonce_key: str
    nonce_ttl_secs: int
    need_user: bool
    signed_at: float  # the request's timestamp, in seconds
    retry_id: str | None = None  # nginx's X-Request-Id: the same request, retried, passes again
    token_hash: str | None = None  # None: no token to look up (see token_problem)
    token_problem: str | None = None  # a 504 message, raised once the nonce is judged
    claimed_user_id: str | None = None

    @property
    def token_cache_key(self) -> str | None:
        return cache_key(self.token_hash) if self.token_hash else None


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def required_appkey(params: Mapping[str, str]) -> str:
    """The appkey to look up, after the presence and format checks."""
    for name in SIGNING_PARAMS:
        if not params.get(name):
            raise ApiError(PARAM_INVALID, f"missing parameter: {name}")
    appkey = params["appkey"]
    if not APPKEY_PATTERN.fullmatch(appkey):
        raise ApiError(APPKEY_UNKNOWN)
    return appkey


def nonce_key(appkey: str, replay_key: str) -> str:
    return f"{NONCE_KEY_PREFIX}:{appkey}:{replay_key}"


def plan_request(
    creds: AppCredentials,
    http_method: str,
    path: str,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    need_user: bool,
    window_secs: int,
    retry_id: str | None = None,
    now: float | None = None,
) -> AuthPlan:
    """Check timestamp and signature; the Redis questions of a correctly signed request."""
    signed_at = signing.check_timestamp(params["timestamp"], window_secs, now)
    signing.verify_sign(creds.sign_method, http_method, path, params, creds.secret)
    nonce = params["nonce"]
    if len(nonce) > signing.MAX_NONCE_LENGTH:
        raise ApiError(PARAM_INVALID, f"nonce: at most {signing.MAX_NONCE_LENGTH} characters")
    replay = signing.replay_key(creds.sign_method, params["timestamp"], nonce)
    token_problem = token_hash = claimed = None
    if need_user:
        token = params.get("token") or bearer_token(authorization)
        claimed = params.get("userId")
        if not token:
            token_problem = "token missing"
        elif len(token) > MAX_TOKEN_LENGTH:
            token_problem = "token invalid"
        else:
            token_hash = hash_token(token)
    return AuthPlan(  # built once: dataclasses.replace cost 2% of a cached profile read
        app_id=creds.id,
        appkey=creds.appkey,
        nonce_key=nonce_key(creds.appkey, replay),
        # Twice the window: a timestamp may be up to one window in the future.
        nonce_ttl_secs=2 * window_secs,
        need_user=need_user,
        signed_at=signed_at,
        retry_id=retry_id if retry_id and len(retry_id) <= MAX_RETRY_ID_LENGTH else None,
        token_hash=token_hash,
        token_problem=token_problem,
        claimed_user_id=claimed,
    )


def redis_commands(plan: AuthPlan) -> list[Command]:
    """The commands of the request's one round trip (``execute_command`` argument tuples):
    the epoch marker first, then the nonce, then the token."""
    commands: list[Command] = [
        ("GET", NONCE_EPOCH_KEY),
        ("SET", plan.nonce_key, plan.retry_id or "1", "EX", plan.nonce_ttl_secs, "NX"),
    ]
    if plan.retry_id:
        commands.append(("GET", plan.nonce_key))
    if plan.token_hash:
        commands.append(("GET", cache_key(plan.token_hash)))
    return commands


def epoch_missing(answers: list[Any]) -> bool:
    """Whether the answers to :func:`redis_commands` found no epoch marker (Redis lost its memory)."""
    return answers[0] is None


def epoch_commands(now: float | None = None) -> list[Command]:
    """The second round trip when the marker is missing: set it to now unless another request
    or process just did, and read the one value every process will use."""
    now = time.time() if now is None else now
    return [("SET", NONCE_EPOCH_KEY, f"{now:.3f}", "NX"), ("GET", NONCE_EPOCH_KEY)]


def with_epoch(answers: list[Any], epoch_answers: list[Any]) -> list[Any]:
    """``answers`` of :func:`redis_commands` with the epoch :func:`epoch_commands` read."""
    return [epoch_answers[-1], *answers[1:]]


def reset_epoch_commands(now: float | None = None) -> list[Command]:
    """What the one who notices a Redis failover sends to the new primary: the epoch becomes
    now (never earlier than it was), so nonces the failover lost cannot be replayed."""
    now = time.time() if now is None else now
    return [("EVAL", RESET_EPOCH_SCRIPT, 1, NONCE_EPOCH_KEY, f"{now:.3f}")]


def token_cached(plan: AuthPlan, answers: list[Any]) -> bool:
    """Whether :func:`judge` can decide from ``answers`` alone (no database read of the token)."""
    return plan.token_hash is None or answers[len(redis_commands(plan)) - 1] is not None


def judge(plan: AuthPlan, answers: list[Any]) -> Caller | None:
    """The caller from the answers to :func:`redis_commands`; None when the token is not
    cached (read the database, then :func:`judge_user`).

    A missing epoch (the executor did not run :func:`epoch_commands`, or Redis lost its
    memory again in between) counts as an epoch of now: refused, the safe side."""
    epoch = answers[0]
    spent_by = answers[2] if plan.retry_id else None
    nonce_fresh = bool(answers[1]) or (plan.retry_id is not None and spent_by == plan.retry_id)
    cached_token = answers[-1] if plan.token_hash else None
    if not nonce_fresh:
        raise ApiError(NONCE_REPLAYED)
    if epoch is None or plan.signed_at < float(epoch):
        raise ApiError(TIMESTAMP_OUT_OF_WINDOW, SIGNED_BEFORE_EPOCH)
    if not plan.need_user:
        return Caller(plan.app_id, plan.appkey)
    if plan.token_problem is not None:
        raise ApiError(TOKEN_INVALID, plan.token_problem)
    if cached_token is None:
        return None
    return judge_user(plan, None if cached_token == REVOKED_MARKER else int(cached_token))


def judge_user(plan: AuthPlan, user_id: int | None) -> Caller:
    """The caller once the token's owner is known (None: no live token)."""
    if user_id is None:
        raise ApiError(TOKEN_INVALID, "token invalid or expired")
    claimed = plan.claimed_user_id
    if claimed and claimed.strip() != str(user_id):
        raise ApiError(TOKEN_INVALID, "token not allowed for this user")
    return Caller(plan.app_id, plan.appkey, user_id, plan.token_hash)
