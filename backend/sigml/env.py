"""Booleans from the environment: the one parser of yes/no settings.

Used by the API's settings (`config.settings.env_bool`), its model loader (`SIGVER_LOAD_MODEL`) and serving
(`SIGVER_BF16`). Standard library only, so that Django's settings can import it without loading torch.
"""

from __future__ import annotations

import os

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off", ""})


def parse_bool(value: str) -> bool | None:
    """True or False for 1/0, true/false, yes/no, on/off (any case, spaces around; empty is False), else None."""
    value = value.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    return None


def env_flag(name: str, default: bool) -> bool:
    """The boolean environment variable `name` (`default` when unset); a value `parse_bool` does not know is a
    ValueError naming the variable, never a silent False."""
    value = os.environ.get(name)
    if value is None:
        return default
    flag = parse_bool(value)
    if flag is None:
        raise ValueError(f"{name}={value.strip().lower()!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")
    return flag
