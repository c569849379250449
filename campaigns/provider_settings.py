"""Which providers ``run`` drives, and with which credentials.

Each provider's key and base URL come from, in this order: the ``run`` flags (Vaani only:
``--api-key``/``--base-url``, kept for compatibility), the provider's environment variables
(``VANIAGENT_API_KEY``, ``VANIAGENT_BASE_URL``, ...; see ``scheduler.providers.registry``),
then the config file's ``[providers.NAME]`` table::

    [providers.vaniagent]
    api-key = "..."            # better in the environment; the file must then be private
    base-url = "https://api.vaniagent.example"
    webhook-secret = "..."     # VaniAgent signs its webhooks with it
    rate-limit = "100/min, 1000/h"   # a list: windows kept together; one rate: the ceiling

A provider is driven when it has a key. A running campaign whose provider has none stops
``run`` at start with the variable to set: it would otherwise wait forever, silently.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.config import config_key
from campaigns.errors import UserError
from scheduler.providers import PROVIDERS, check_config

#: the keys a ``[providers.NAME]`` table may hold (config-file form: underscores)
TABLE_KEYS = ("api_key", "base_url", "webhook_secret", "rate_limit")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderRun:
    """One provider that ``run`` drives: its name and settings (secrets never in repr)."""

    name: str
    api_key: str = field(repr=False)
    base_url: str | None
    webhook_secret: str | None = field(default=None, repr=False)
    rate_limit: str | None = None

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.webhook_secret) if s]


def config_schema() -> dict[str, Any]:
    """The ``[providers]`` part of the config file's schema (see ``campaigns.config``)."""
    # in the compared form: [providers.vaani-ai] is read as "vaani_ai", like every key
    return {config_key(name): dict.fromkeys(TABLE_KEYS) for name in PROVIDERS}


def resolve(
    table: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    vaani_key: str | None,
    vaani_base_url: str | None,
) -> dict[str, ProviderRun]:
    """Every provider that has a key, by name. ``table`` is the config file's ``providers``
    table (normalised keys); each key is checked like a flag (ProviderConfigError otherwise)."""
    out: dict[str, ProviderRun] = {}
    for name, spec in PROVIDERS.items():
        conf: Mapping[str, Any] = table.get(config_key(name)) or table.get(name) or {}
        flag_key = vaani_key if name == "vaani" else None
        flag_url = vaani_base_url if name == "vaani" else None
        key = flag_key or env.get(spec.key_env) or conf.get("api_key")
        if not key:
            continue
        url = flag_url or env.get(spec.base_url_env) or conf.get("base_url") or None
        secret_env = spec.webhook_secret_env
        secret = (env.get(secret_env) if secret_env else None) or conf.get("webhook_secret")
        check_config(name, api_key=str(key), base_url=url)
        out[name] = ProviderRun(
            name=name,
            api_key=str(key),
            base_url=url,
            webhook_secret=str(secret) if secret else None,
            rate_limit=conf.get("rate_limit"),
        )
    return out


def missing_key(provider: str, who: str) -> UserError:
    """The error for ``provider`` having no key (``who``: "running campaigns use"), naming
    what to set."""
    spec = PROVIDERS.get(provider)
    env = spec.key_env if spec else "its API key"
    how = f"pass --api-key or set {env}" if provider == "vaani" else f"set {env}"
    return UserError(
        f"{who} provider {provider!r}, which has no API key: {how} "
        f"(or api-key in the config file's [providers.{provider}] table)"
    )


def require(runs: Mapping[str, ProviderRun], needed: Collection[str]) -> list[ProviderRun]:
    """The providers to drive: all with a key. UserError when none has one, or when a running
    campaign's provider has none (naming what to set)."""
    missing = sorted(set(needed) - set(runs))
    if missing:
        raise missing_key(missing[0], "running campaigns use")
    if not runs:
        others = ", ".join(s.key_env for n, s in sorted(PROVIDERS.items()) if n != "vaani")
        also = f" (or {others} for campaigns of other providers)" if others else ""
        raise UserError(f"no API key: pass --api-key or set VAANI_API_KEY{also}")
    return [runs[name] for name in sorted(runs)]
