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
    with pytest.raises(UserError, match=r"provider 'elsewhere'.*\[providers\.elsewhere\]"):
        require(runs, {"vaani", "elsewhere"})


def test_every_campaign_provider_name_has_a_client() -> None:
    from scheduler.provider_names import PROVIDER_NAMES
    from scheduler.providers import PROVIDERS

    assert set(PROVIDERS) == set(PROVIDER_NAMES)


def test_run_refuses_running_campaigns_it_has_no_key_for(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A running campaign of a provider without a key would wait forever: run says what to set
    at start, before placing any call, and stores nothing of the key it was given."""
    from tests.cli_helpers import ALL_DAY, create_campaign, run_cli, write_contacts_csv

    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": "+919800000001", "name": "Asha"}])
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "vaniagent")
    res = run_cli(
        "run",
        "--until-done",
        "--no-progress",
        db_url=sqlite_url,
        env={"VAANI_API_KEY": "k-vaani-123", "VAANI_BASE_URL": "http://127.0.0.1:9"},
    )
    assert res.returncode == 1, res.stderr
    assert "provider 'vaniagent'" in res.stderr and "[providers.vaniagent]" in res.stderr
    assert "Traceback" not in res.stderr and "k-vaani-123" not in res.stderr
