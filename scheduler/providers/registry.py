"""Which providers exist, and the one function that builds a provider client by name.

The daemon and the CLI name a provider (a campaign's ``provider`` column, ``--provider``) and
get a :class:`~scheduler.providers.base.CallProvider`; nothing else in the engine imports a
provider module. Adding a provider is one :class:`ProviderSpec` here. Credentials come from
flags, then the environment variables the spec names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from scheduler.providers.base import CallProvider
from scheduler.providers.config import ProviderConfig
from scheduler.providers.http import RequestGate
from scheduler.providers.vaani import DEFAULT_BASE_URL as VAANI_BASE_URL
from scheduler.providers.vaani import VaaniProvider
from scheduler.providers.vaani_ai import DEFAULT_BASE_URL as VAANI_AI_BASE_URL
from scheduler.providers.vaani_ai import VaaniAIProvider
from scheduler.providers.vaniagent import DEFAULT_BASE_URL as VANIAGENT_BASE_URL
from scheduler.providers.vaniagent import STARTER_WINDOWS, VaniAgentProvider
from scheduler.providers.voisnap import DEFAULT_BASE_URL as VOISNAP_BASE_URL
from scheduler.providers.voisnap import build as build_voisnap
from scheduler.retry import RetryPolicy, Sleep


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    """How to build one provider and where its settings come from."""

    name: str
    label: str
    default_base_url: str
    key_env: str
    base_url_env: str
    build: Callable[..., CallProvider]
    #: the variable holding the secret the provider signs its webhooks with, if it sends any
    webhook_secret_env: str | None = None
    #: the plan's request windows (``"100/min"``, ``"1000/h"``), enforced together when the
    #: config's ``rate-limit`` names none (``scheduler.ratelimit_windows``)
    rate_windows: tuple[str, ...] = ()


PROVIDERS: dict[str, ProviderSpec] = {
    "vaani": ProviderSpec(
        name="vaani",
        label="Vaani",
        default_base_url=VAANI_BASE_URL,
        key_env="VAANI_API_KEY",
        base_url_env="VAANI_BASE_URL",
        build=VaaniProvider,
    ),
    "voisnap": ProviderSpec(
        name="voisnap",
        label="Voisnap",
        default_base_url=VOISNAP_BASE_URL,
        key_env="VOISNAP_API_KEY",
        base_url_env="VOISNAP_BASE_URL",
        build=build_voisnap,
    ),
    "vaniagent": ProviderSpec(
        name="vaniagent",
        label="VaniAgent",
        default_base_url=VANIAGENT_BASE_URL,
        key_env="VANIAGENT_API_KEY",
        base_url_env="VANIAGENT_BASE_URL",
        build=VaniAgentProvider,
        webhook_secret_env="VANIAGENT_WEBHOOK_SECRET",
        rate_windows=STARTER_WINDOWS,
    ),
    "vaani-ai": ProviderSpec(
        name="vaani-ai",
        label="vaani.ai",
        default_base_url=VAANI_AI_BASE_URL,
        key_env="VAANI_AI_API_KEY",
        base_url_env="VAANI_AI_BASE_URL",
        build=VaaniAIProvider,
    ),
}


def provider_spec(name: str) -> ProviderSpec:
    """The spec of provider ``name``; ProviderConfigError naming the known ones otherwise."""
    spec = PROVIDERS.get(name)
    if spec is None:
        from scheduler.errors import ProviderConfigError

        known = ", ".join(sorted(PROVIDERS))
        raise ProviderConfigError(f"unknown provider {name!r}: expected one of {known}")
    return spec


def check_config(name: str, *, api_key: str, base_url: str | None = None) -> ProviderConfig:
    """Validate a provider's settings without building a client (the CLI does this at start,
    so that an unusable key stops ``run`` with one line instead of failing every request)."""
    spec = provider_spec(name)
    return ProviderConfig(
        provider=spec.name,
        api_key=api_key,
        base_url=base_url or spec.default_base_url,
        label=spec.label,
        key_env=spec.key_env,
    )


def make_provider(
    name: str,
    *,
    api_key: str,
    base_url: str | None = None,
    gate: RequestGate | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | httpx.Timeout = 30.0,
    max_connections: int = 50,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
) -> CallProvider:
    """A client of provider ``name`` (raises ProviderConfigError for unusable settings)."""
    spec = provider_spec(name)
    return spec.build(
        api_key,
        base_url or spec.default_base_url,
        timeout=timeout,
        retry=retry or RetryPolicy(),
        gate=gate,
        transport=transport,
        max_connections=max_connections,
        sleep=sleep,
    )
