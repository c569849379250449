"""The provider names, without loading any provider (the CLI validates ``--provider`` at
start-up, before it needs a client). ``registry.PROVIDERS`` has one spec per name."""

from __future__ import annotations

DEFAULT_PROVIDER = "vaani"

#: every provider a campaign may name, in the order help texts list them
PROVIDER_NAMES: tuple[str, ...] = ("vaani", "vaniagent", "voisnap", "vaani-ai")

#: providers that place a call from a number the campaign must give (``--caller-id``):
#: vaani.ai names the agent by its phone number (``agent_phone_number``)
CALLER_ID_REQUIRED: frozenset[str] = frozenset({"vaani-ai"})
