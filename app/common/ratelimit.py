"""flask-limiter's per-request hook, run only when it has something to check.

flask-limiter checks limits in two places. A limit decorated onto a view (login and register
here) is checked by its decorator when that view runs. Every other kind — default limits,
application-wide limits, limits on a whole blueprint and meta limits — is checked by a
``before_request`` hook that runs for every request. This service declares none of those, yet
the hook still resolves "no limits" for every request: about 60 µs, a tenth of an authenticated
read (``bench/profile_requests.py``), and flask-limiter 4 has no switch to leave it out.

:func:`install` wraps that hook so it runs only while the limiter holds a limit of those kinds.
The question is asked of the limiter's own state on every request, so a limit added later (in
``RATELIMIT_DEFAULT`` or ``RATELIMIT_APPLICATION``, or by decorating a blueprint) is applied as
before. The state lives in attributes flask-limiter does not document; if a release renames them,
the hook runs on every request again, as flask-limiter intends: slower, never laxer.
"""

from __future__ import annotations

import ipaddress

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Where flask-limiter 4 keeps the limits its before_request hook applies; anything but an empty
# container (a missing attribute included: the default True) means "run the hook".
_MANAGER_LIMITS = ("_application_limits", "_default_limits", "_blueprint_limits")


def has_request_wide_limits(limiter: Limiter) -> bool:
    """Whether ``limiter`` holds limits that only its ``before_request`` hook applies."""
    manager = getattr(limiter, "limit_manager", None)
    if manager is None:
        return True
    if any(getattr(manager, name, True) for name in _MANAGER_LIMITS):
        return True
    return bool(getattr(limiter, "_meta_limits", True))


def install(app: Flask, limiter: Limiter) -> None:
    """Replace ``limiter``'s ``before_request`` hook on ``app`` by one that skips the check while
    :func:`has_request_wide_limits` is false. Call it right after ``limiter.init_app(app)``."""
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    if check not in hooks:  # nothing to wrap (this flask-limiter registers it otherwise)
        return

    def check_request_wide_limits() -> None:
        if has_request_wide_limits(limiter):
            check()

    hooks[hooks.index(check)] = check_request_wide_limits


def client_key() -> str:
    """Whom a rate limit counts: the client's address (after TRUSTED_PROXIES), and for IPv6
    its /64 network. One subscriber is routinely given a whole /64, 2^64 addresses, so counting
    each address on its own would give one client as many budgets as it likes."""
    address = get_remote_address()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
