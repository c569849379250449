"""Which providers ``run`` drives, with which credentials (campaigns.provider_settings)."""

from __future__ import annotations

import pytest

from campaigns.errors import UserError
from campaigns.provider_settings import require, resolve
from scheduler.errors import ProviderConfigError


def test_flag_beats_environment_beats_config_file() -> None:
    table = {"vaani": {"api_key": "from-file", "base_url": "http://file.example"}}
    env = {"VAANI_API_KEY": "from-env"}
    runs = resolve(table, env, vaani_key="from-flag", vaani_base_url=None)
    assert runs["vaani"].api_key == "from-flag"
    assert runs["vaani"].base_url == "http://file.example"
    runs = resolve(table, env, vaani_key=None, vaani_base_url=None)
    assert runs["vaani"].api_key == "from-env"
    runs = resolve(table, {}, vaani_key=None, vaani_base_url="http://flag.example")
    assert (runs["vaani"].api_key, runs["vaani"].base_url) == ("from-file", "http://flag.example")


def test_a_provider_without_a_key_is_not_driven() -> None:
    assert resolve({}, {}, vaani_key=None, vaani_base_url=None) == {}


def test_secrets_never_show_in_repr() -> None:
    runs = resolve(
        {"vaani": {"webhook_secret": "whsec-123"}}, {}, vaani_key="k-456", vaani_base_url=None
    )
    assert "k-456" not in repr(runs) and "whsec-123" not in repr(runs)
    assert set(runs["vaani"].secrets) == {"k-456", "whsec-123"}


def test_an_unusable_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ProviderConfigError) as err:
        resolve({}, {"VAANI_API_KEY": "bad key\twith-space"}, vaani_key=None, vaani_base_url=None)
    assert "bad key" not in str(err.value)


def test_require_names_what_to_set() -> None:
    with pytest.raises(UserError, match="no API key: pass --api-key or set VAANI_API_KEY"):
        require({}, ())
    runs = resolve({}, {}, vaani_key="k", vaani_base_url=None)
    assert [r.name for r in require(runs, {"vaani"})] == ["vaani"]
    with pytest.raises(UserError, match="provider 'elsewhere'.*\\[providers.elsewhere\\]"):
        require(runs, {"vaani", "elsewhere"})
