"""Filters: the steps a matched route applies to a request or its response. Sans-IO.

Each filter is a frozen object built once with the route table (by ``routes``) and asked a pure
question per request: which header lines to forward, where to redirect, what the rewritten
target is. The data plane applies the answers; nothing here reads a socket or a clock.

Semantics follow the Gateway API ``HTTPRouteFilter`` types (gateway-api v1.6.3,
``apis/v1/httproute_types.go``); the module docstrings cite the parts they implement.
"""

from __future__ import annotations

from kexpose.proxy.filters._auth import DEFAULT_REALM, EdgeAuth, Mechanism
from kexpose.proxy.filters._basic import (
    BasicAuth,
    Credential,
    CredentialCache,
    basic_credentials,
    check_password,
    parse_htpasswd,
    password_matches,
    plain_credential,
)
from kexpose.proxy.filters._cors import (
    Cors,
    cors_preflight_headers,
    cors_response_headers,
    origin_allowed,
)
from kexpose.proxy.filters._forward import (
    DEFAULT_TIMEOUT,
    Denial,
    ForwardAuth,
    forward_outcome,
    original_url,
    signin_location,
    subrequest_head,
)
from kexpose.proxy.filters._headers import HeaderModifier, apply_header_modifier
from kexpose.proxy.filters._jwt import (
    ACCEPTED_ALGORITHMS,
    CLOCK_SKEW,
    Jwk,
    JwtAuth,
    TokenCache,
    TokenVerdict,
    bearer_token,
    check_claims,
    claim_values,
    keys_fingerprint,
    parse_jwks,
    verify_token,
)
from kexpose.proxy.filters._paths import PathModifier, replace_path
from kexpose.proxy.filters._redirect import Redirect, Rewrite, redirect_location
from kexpose.proxy.filters._sources import (
    Address,
    Network,
    client_address,
    in_ranges,
    is_exempt,
    parse_networks,
)

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "CLOCK_SKEW",
    "DEFAULT_REALM",
    "DEFAULT_TIMEOUT",
    "Address",
    "BasicAuth",
    "Cors",
    "Credential",
    "CredentialCache",
    "Denial",
    "EdgeAuth",
    "ForwardAuth",
    "HeaderModifier",
    "Jwk",
    "JwtAuth",
    "Mechanism",
    "Network",
    "PathModifier",
    "Redirect",
    "Rewrite",
    "TokenCache",
    "TokenVerdict",
    "apply_header_modifier",
    "basic_credentials",
    "bearer_token",
    "check_claims",
    "check_password",
    "claim_values",
    "client_address",
    "cors_preflight_headers",
    "cors_response_headers",
    "forward_outcome",
    "in_ranges",
    "is_exempt",
    "keys_fingerprint",
    "origin_allowed",
    "original_url",
    "parse_htpasswd",
    "parse_jwks",
    "parse_networks",
    "password_matches",
    "plain_credential",
    "redirect_location",
    "replace_path",
    "signin_location",
    "subrequest_head",
    "verify_token",
]
