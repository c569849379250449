"""The web console and its HTTP API (``vaani-campaigns serve``), a shell over the services.

* :mod:`~campaigns.web.app`: the Starlette app factory and its routes;
* :mod:`~campaigns.web.security`: the bearer token (constant-time compare) and the headers
  every answer carries (CSP, nosniff);
* :mod:`~campaigns.web.uploads`: a CSV upload streamed to a temporary file under a size cap;
* :mod:`~campaigns.web.streams`: the report and the progress events, streamed;
* :mod:`~campaigns.web.server`: uvicorn in the caller's event loop, beside the daemon or not;
* ``static/``: the one page (plain HTML, CSS and JS; no build step, nothing from a CDN).

Nothing here imports at CLI start-up: ``serve`` and ``demo --serve`` import it when they run.
The database is reached through :mod:`campaigns.services` and :mod:`storage` functions only.
"""
