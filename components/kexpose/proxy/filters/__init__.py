"""Filters: the steps a matched route applies to a request or its response. Sans-IO.

Each filter is a frozen object built once with the route table (by ``routes``) and asked a pure
question per request: which header lines to forward, where to redirect, what the rewritten
target is. The data plane applies the answers; nothing here reads a socket or a clock.

Semantics follow the Gateway API ``HTTPRouteFilter`` types (gateway-api v1.6.3,
``apis/v1/httproute_types.go``); the module docstrings cite the parts they implement.
"""

from __future__ import annotations

from kexpose.proxy.filters._cors import (
    Cors,
    cors_preflight_headers,
    cors_response_headers,
    origin_allowed,
)
from kexpose.proxy.filters._headers import HeaderModifier, apply_header_modifier
from kexpose.proxy.filters._paths import PathModifier, replace_path
from kexpose.proxy.filters._redirect import Redirect, Rewrite, redirect_location

__all__ = [
    "Cors",
    "HeaderModifier",
    "PathModifier",
    "Redirect",
    "Rewrite",
    "apply_header_modifier",
    "cors_preflight_headers",
    "cors_response_headers",
    "origin_allowed",
    "redirect_location",
    "replace_path",
]
