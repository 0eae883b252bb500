"""Host names that are really IP addresses, in every spelling a resolver accepts.

An address check that only knows dotted quads is easy to walk around: glibc's resolver (and so
most HTTP clients) also reads inet_aton's numeric forms as names, so ``127.1``, ``0x7f.1`` and
``2130706433`` all reach 127.0.0.1, and an IPv4-mapped IPv6 literal (``::ffff:127.0.0.1``)
reaches the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["address_of", "is_localhost_name"]

# inet_aton's numeric forms: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
_INET_ATON_PART: Final = re.compile(r"^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$")


def _inet_aton(host: str) -> int | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.match(p) for p in parts):
        return None
    values = [
        int(p, 16) if p.startswith("0x") else int(p, 8) if p.startswith("0") else int(p)
        for p in parts
    ]
    *head, last = values
    # The last part fills the remaining bytes: "127.1" is 127.0.0.1, "2130706433" is too.
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for position, value in enumerate(head):
        number += value << (8 * (3 - position))
    return number


def address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` spells (lower-cased, brackets allowed), or None for a name.

    An IPv4-mapped IPv6 address is returned as the IPv4 address it maps to.
    """
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        number = _inet_aton(literal)
        return None if number is None else ipaddress.IPv4Address(number)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_localhost_name(host: str) -> bool:
    """``localhost`` or a name under it (RFC 6761 §6.3: both resolve to loopback)."""
    return host == "localhost" or host.endswith(".localhost")
