"""The console's form reader and token check (properties, with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import campaigns.importer.importer  # noqa: F401  (pandas loads once, not inside a timed example)
from campaigns.errors import UserError
from campaigns.web.forms import IMPORT_FIELDS, SPEC_FIELDS, parse_create_form
from campaigns.web.security import token_matches

KNOWN = {*SPEC_FIELDS, *IMPORT_FIELDS}
names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20)


@given(names.filter(lambda n: n not in KNOWN))
def test_an_unknown_field_is_refused_by_name(name: str) -> None:
    with pytest.raises(UserError) as err:
        parse_create_form({"name": "x", "agent_id": "a", name: "1"})
    assert name in str(err.value)


@given(st.text(max_size=12).filter(lambda v: not v.strip().lstrip("+-").isdigit()))
def test_max_attempts_must_be_a_whole_number(value: str) -> None:
    fields = {"name": "x", "agent_id": "a", "max_attempts": value}
    if not value.strip():  # empty: the default
        assert parse_create_form(fields).spec.max_attempts == 3
        return
    with pytest.raises(UserError, match="max_attempts"):
        parse_create_form(fields)


def test_fields_map_to_the_spec_and_the_import_options() -> None:
    form = parse_create_form(
        {
            "name": " Diwali ",
            "agent_id": "a",
            "max_attempts": "2",
            "draft": "on",
            "region": "IN",
            "window": "",
        }
    )
    assert (form.spec.name, form.spec.max_attempts, form.spec.draft, form.spec.window) == (
        " Diwali ".strip(), 2, True, "09:00-20:00",
    )  # fmt: skip
    assert form.options.region == "IN" and form.options.dnc_file is None


@given(st.text(max_size=40), st.text(min_size=1, max_size=40))
def test_a_token_matches_only_itself(given_token: str, expected: str) -> None:
    assert token_matches(given_token, expected) is (given_token == expected)
    assert token_matches(expected, expected)
    assert not token_matches(None, expected)
