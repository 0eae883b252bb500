"""Environments and their profiles: the defaults and prohibitions of dev, staging and prod.

Kept as a table that code looks up (h11 ``_state.py`` style), with the reasoning beside each row.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["ENVIRONMENTS", "Environment"]

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = get_args(Environment)
