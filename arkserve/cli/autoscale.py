"""The ``--autoscale`` option of ``service create`` and ``service update``: ``min=0,max=8,target=4`` or ``off``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
FIELDS = {"min": int, "max": int, "target": float, "stable": float, "panic": float, "scale_in_delay": float,
          "idle": float, "cold_start": float}
NAMES = {"stable": "stable_window_s", "panic": "panic_window_s", "scale_in_delay": "scale_in_delay_s",
         "idle": "idle_to_zero_s", "cold_start": "cold_start_timeout_s"}
HELP = ("Automatic replica count, e.g. min=0,max=8,target=4 (target: requests in flight per replica); also "
        "stable=60, panic=6, scale_in_delay=300, idle=600, cold_start=120 (seconds). 'off' turns it off "
        "(docs/autoscaling.md).")


def parse_autoscale(text: str) -> dict[str, Any] | None:
    """The API's ``autoscale`` object for ``text`` (``None`` for ``off``)."""
    if text.strip().lower() in ("off", "none", "false", "manual"):
        return None
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in FIELDS:
            raise click.BadParameter(f"{part!r}: expected KEY=VALUE with KEY one of {', '.join(FIELDS)}, or 'off'",
                                     param_hint="--autoscale")
        try:
            out[NAMES.get(key, key)] = FIELDS[key](value.strip())
        except ValueError:
            raise click.BadParameter(f"{part!r}: {value.strip()!r} is not a number", param_hint="--autoscale") from None
    return out


def autoscale_option(f: F) -> F:
    return click.option("--autoscale", "autoscale", default=None, metavar="min=N,max=M,target=T|off", help=HELP)(f)


def autoscale_line(spec: dict[str, Any]) -> str:
    """What ``service get`` says of the setting."""
    a = spec.get("autoscale")
    if not a:
        return "manual (`service update NAME --autoscale min=0,max=8,target=4` turns the autoscaler on)"
    return (f"automatic {a['min']}-{a['max']} replicas, target {a['target']:g} in flight per replica; windows "
            f"{a['stable_window_s']:g} s / panic {a['panic_window_s']:g} s, scale-in after "
            f"{a['scale_in_delay_s']:g} s, idle to zero after {a['idle_to_zero_s']:g} s, cold start up to "
            f"{a['cold_start_timeout_s']:g} s")
