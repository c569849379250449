"""The calling policy, as the rest of the program imports it.

The policy lives in three modules, each with one job:

* :mod:`campaigns.parsing`: what people type (windows, days, durations, zones) and its inverse;
* :mod:`campaigns.calling`: :class:`CallingPolicy`, a campaign's window, dates, cap and re-dial
  delays as a frozen value;
* :mod:`campaigns.dialing`: the decisions built on it (dial or not, the contact's state after
  an outcome, opt-outs) and the one cache of policies.

This module re-exports the first two so that ``from campaigns.policy import CallingPolicy,
parse_window`` keeps working.
"""

from __future__ import annotations

from campaigns.calling import (
    BUSY_DELAY_CAP,
    DEFAULT_RETRY_DELAYS,
    REDIAL_OUTCOMES,
    SEARCH_HORIZON,
    UNKNOWN_ZONE,
    CallingPolicy,
    CampaignSettings,
    default_retry_delays,
)
from campaigns.parsing import (
    DAY_NAMES,
    END_OF_DAY,
    format_clock,
    format_days,
    format_duration,
    format_window,
    parse_days,
    parse_duration,
    parse_window,
    parse_zone,
)

__all__ = [
    "BUSY_DELAY_CAP",
    "DAY_NAMES",
    "DEFAULT_RETRY_DELAYS",
    "END_OF_DAY",
    "REDIAL_OUTCOMES",
    "SEARCH_HORIZON",
    "UNKNOWN_ZONE",
    "CallingPolicy",
    "CampaignSettings",
    "default_retry_delays",
    "format_clock",
    "format_days",
    "format_duration",
    "format_window",
    "parse_days",
    "parse_duration",
    "parse_window",
    "parse_zone",
]
