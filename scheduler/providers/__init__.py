"""Voice-AI providers behind one interface (:mod:`scheduler.providers.base`).

* ``base``: the :class:`CallProvider` protocol and the neutral values it takes and returns;
* ``registry``: the providers by name, and :func:`make_provider`;
* ``config``: a provider's validated connection settings;
* ``http``: the HTTP core every provider client is built on (gate, retries, error mapping);
* ``client``: ``HttpProvider``, the base of the four clients (settings, auth, rate info, close);
* ``wire_common``: parsing rules every provider's wire shares;
* ``vaani`` and ``vaani_wire``: Vaani (``X-API-Key``, newest-first call history).
* ``voisnap`` and ``voisnap_wire``: Voisnap (bearer key or JWT; REST paths assumed from its
  SDK and overridable with ``VOISNAP_PATHS``).
* ``vaniagent`` and ``vaniagent_wire``: VaniAgent (``Authorization: Bearer``, ``/v1/calls``
  offset pages read newest first, our attempt reference echoed in the call's metadata);
* ``listing``: the newest-first search of a listing for a lost answer's call.

Only this package knows a provider's wire; the dispatcher, poller and reconciler see the
interface and its :class:`Capabilities`.
"""

from scheduler.provider_names import DEFAULT_PROVIDER
from scheduler.providers.base import (
    CallOutcome,
    CallPage,
    CallProvider,
    CallQuery,
    CallRecord,
    Capabilities,
    DialRequest,
    Direction,
    EventSource,
    ListedCall,
    Listing,
    PlacedCall,
    PushedEvent,
)
from scheduler.providers.registry import (
    PROVIDERS,
    ProviderSpec,
    check_config,
    make_provider,
    provider_spec,
)

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "CallOutcome",
    "CallPage",
    "CallProvider",
    "CallQuery",
    "CallRecord",
    "Capabilities",
    "DialRequest",
    "Direction",
    "EventSource",
    "ListedCall",
    "Listing",
    "PlacedCall",
    "ProviderSpec",
    "PushedEvent",
    "check_config",
    "make_provider",
    "provider_spec",
]
