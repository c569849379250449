"""A provider's connection settings, validated when they are built.

A key that no request could carry is refused here, at start, with a message that does not
echo it: an empty key, one with whitespace or control characters, and one with non-ASCII
characters (HTTP header values are ASCII; such a key used to fail every request with a
``UnicodeEncodeError``, retried forever). The base URL must be ``http(s)://``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.errors import ProviderConfigError
from scheduler.logs import redact


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderConfig:
    """Where a provider is and how we authenticate to it (the key never shows in repr)."""

    #: the registry name, e.g. ``"vaani"``
    provider: str
    api_key: str = field(repr=False)
    base_url: str
    #: the provider as people name it, for messages ("Vaani")
    label: str = ""
    #: the environment variable the key comes from, for messages
    key_env: str = ""

    def __post_init__(self) -> None:
        label = self.label or self.provider
        where = f": set --api-key or {self.key_env}" if self.key_env else ""
        key = self.api_key
        if not isinstance(key, str) or not key.strip():
            raise ProviderConfigError(f"the {label} API key is empty{where}")
        if any(c.isspace() for c in key) or not key.isprintable():
            raise ProviderConfigError(
                f"the {label} API key contains whitespace or control characters"
            )
        if not key.isascii():
            raise ProviderConfigError(
                f"the {label} API key contains non-ASCII characters (HTTP headers are ASCII): "
                "check it was copied whole and without typographic quotes or accents"
            )
        base = self.base_url.strip().rstrip("/") if isinstance(self.base_url, str) else ""
        if not base.startswith(("http://", "https://")):
            shown = redact(base, key)
            raise ProviderConfigError(
                f"the {label} base URL must start with http:// or https://: {shown!r}"
            )
        object.__setattr__(self, "base_url", base)
        object.__setattr__(self, "label", label)
