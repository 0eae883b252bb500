"""Who the client is, whether its address may come in, and which paths skip authentication.

Rules (edge-auth.md, "Source ranges" and "Where it applies"):

- The client address is the TCP peer, unless the peer is in ``--trusted-proxies``; then it is
  the right-most address of ``X-Forwarded-For`` that is not trusted (nginx ``real_ip_header``
  with ``real_ip_recursive on``). With no trusted proxies (the default) a client's own
  ``X-Forwarded-For`` is never read. An entry that is not an IP address ends the walk with no
  client address, which no allow-list admits: a malformed chain fails closed.
- An IPv4-mapped IPv6 peer (``::ffff:192.0.2.1``, a dual-stack socket) is its IPv4 address.
- Exempt paths match like ``Prefix`` paths: segment-wise, case-sensitive, a trailing ``/``
  ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

__all__ = [
    "Address",
    "Network",
    "client_address",
    "in_ranges",
    "is_exempt",
    "parse_networks",
]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_networks(value: str) -> tuple[tuple[Network, ...], list[str]]:
    """Comma-separated CIDRs (or single addresses) -> networks, and the entries that are not.

    Host bits set (``10.0.0.1/8``) are accepted as ingress-nginx accepts them: the network is
    what the prefix says.
    """
    networks: list[Network] = []
    bad: list[str] = []
    for item in value.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    return tuple(networks), bad


def _address(text: str) -> Address | None:
    try:
        found = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(found, IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in trusted)


def client_address(
    peer: str, forwarded_for: bytes | None, trusted: Sequence[Network]
) -> Address | None:
    """The client's address for the allow-list; None when it cannot be known."""
    address = _address(peer)
    if address is None or not trusted or not _trusted(address, trusted):
        return address
    if not forwarded_for:
        return address
    hops = forwarded_for.decode("latin-1").split(",")
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:
            return None
        if not _trusted(found, trusted):
            return found
        address = found
    return address  # every hop trusted: the left-most one, as nginx does


def in_ranges(address: Address | None, ranges: Sequence[Network]) -> bool:
    if address is None:
        return False
    return any(address.version == n.version and address in n for n in ranges)


def is_exempt(path: str, prefixes: Sequence[str]) -> bool:
    """Whether the (normalised) request path falls under one of the exempt prefixes, which the
    route core stored without a trailing ``/`` (``/`` itself is stored as ``""``)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)
