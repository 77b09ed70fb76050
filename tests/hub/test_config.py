"""The hub configuration: settings parse with one-line errors, and JupyterHub itself
loads the config (and builds the OIDC authenticator) for every authenticator choice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.errors import ConfigError
from jaas.notebook.hub import CONFIG_FILE, hub_settings, user_env
from tests.hub.conftest import CONFIG, PROXY, hub_env

jupyterhub = pytest.importorskip("jupyterhub")  # the hub extra


def test_deploy_config_is_the_one_jaas_hub_runs() -> None:
    assert CONFIG.read_text() == CONFIG_FILE


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: str):  # type: ignore[no-untyped-def]
    from jupyterhub.app import JupyterHub

    env = hub_env(tmp_path / "hub", JAAS_HUB_PROXY=sys.executable, **extra)
    for key, value in env.items():
        if key.startswith("JAAS_"):
            monkeypatch.setenv(key, value)
    app = JupyterHub()
    app.load_config_file(str(CONFIG))
    return app.config


def test_one_machine_config_loads_in_jupyterhub(tmp_path, monkeypatch) -> None:
    c = _load(tmp_path, monkeypatch, JAAS_HUB_USERS="alice, bob", JAAS_HUB_ADMINS="carol",
              JAAS_HUB_MEM_LIMIT="4G", JAAS_HUB_CPU_LIMIT="2", JAAS_DATA="/data/run1",
              JAAS_HUB_CACHE_BYTES="512MiB")  # fmt: skip
    assert c.JupyterHub.authenticator_class == "dummy"
    assert c.Authenticator.allowed_users == {"alice", "bob", "carol"}
    assert c.Authenticator.admin_users == {"carol"}
    assert c.JupyterHub.spawner_class == "jaas.notebook.spawner.CgroupSpawner"
    assert (c.Spawner.mem_limit, c.Spawner.cpu_limit) == ("4G", 2.0)
    [service] = c.JupyterHub.services
    assert service["name"] == "jaas-cluster" and "middleware" in service["command"]
    hs = hub_settings()
    env = user_env(hs, "alice")
    assert env["JAAS_SCHEDULER"] == f"tcp://127.0.0.1:{hs.scheduler_port}"
    assert env["JAAS_CACHE_BYTES"] == str(512 * 2**20) and env["JAAS_DATA"] == "/data/run1"
    # the spawner's real limit traits accept the values
    from jaas.notebook.cgroups import cgroups
    from jaas.notebook.spawner import CgroupSpawner

    sp = CgroupSpawner(config=c)
    assert sp.mem_limit == 4 * 2**30 and sp.cpu_limit == 2.0
    assert sp.cgroup_name == f"jaas-hub-{hs.port}"
    for d in cgroups(sp.cgroup_name, create=False).parents():  # made by the config check
        d.rmdir()


def test_an_external_cluster_starts_no_service(tmp_path, monkeypatch) -> None:
    c = _load(tmp_path, monkeypatch, JAAS_HUB_SCHEDULER="tcp://head:8786", JAAS_HUB_AUTH="pam")
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.JupyterHub.spawner_class == "simple"  # no limits: no cgroups
    assert "services" not in c.JupyterHub
    assert user_env(hub_settings(), "x")["JAAS_SCHEDULER"] == "tcp://head:8786"


def test_oidc_config_builds_the_generic_oauthenticator(tmp_path, monkeypatch) -> None:
    pytest.importorskip("oauthenticator")
    from oauthenticator.generic import GenericOAuthenticator

    iam = "https://iam.example.org"
    c = _load(
        tmp_path, monkeypatch, JAAS_HUB_AUTH="oidc", JAAS_HUB_USERS="alice",
        JAAS_HUB_OIDC_AUTHORIZE_URL=f"{iam}/authorize", JAAS_HUB_OIDC_TOKEN_URL=f"{iam}/token",
        JAAS_HUB_OIDC_USERDATA_URL=f"{iam}/userinfo", JAAS_HUB_OIDC_CLIENT_ID="jaas",
        JAAS_HUB_OIDC_CLIENT_SECRET="s3cret",
        JAAS_HUB_OIDC_CALLBACK_URL="https://hub.example.org/hub/oauth_callback",
    )  # fmt: skip
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    auth = GenericOAuthenticator(config=c)
    assert auth.authorize_url == f"{iam}/authorize" and auth.client_id == "jaas"
    assert auth.scope == ["openid", "profile", "email"]
    assert auth.username_claim == "preferred_username"
    assert auth.allowed_users == {"alice"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JAAS_HUB_AUTH": "ldap"}, r"^JAAS_HUB_AUTH='ldap': give one of dummy, pam, oidc$"),
        ({"JAAS_HUB_AUTH": "oidc", "JAAS_HUB_OIDC_CLIENT_ID": "x"},
         r"^JAAS_HUB_AUTH=oidc needs JAAS_HUB_OIDC_AUTHORIZE_URL, .*CALLBACK_URL$"),
        ({"JAAS_HUB_PORT": "http"}, r"^JAAS_HUB_PORT='http': give a port number"),
        ({"JAAS_HUB_MEM_LIMIT": "lots"}, r"^JAAS_HUB_MEM_LIMIT='lots': give bytes"),
        ({"JAAS_HUB_CPU_LIMIT": "-1"}, r"^JAAS_HUB_CPU_LIMIT='-1': give a number of cores"),
        ({"JAAS_HUB_WORKERS": "0"}, r"^JAAS_HUB_WORKERS='0'"),
        ({"JAAS_HUB_CACHE_BYTES": "1 bucket"}, r"^JAAS_HUB_CACHE_BYTES='1 bucket': not a byte"),
        ({"JAAS_HUB_SCHEDULER": "head:8786"}, r"^JAAS_HUB_SCHEDULER='head:8786': give an addr"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        hub_settings(env)


def test_jaas_hub_check_and_dry_run(tmp_path, monkeypatch) -> None:
    for key, value in hub_env(tmp_path / "hub", JAAS_HUB_USERS="alice").items():
        if key.startswith("JAAS_"):
            monkeypatch.setenv(key, value)
    res = CliRunner().invoke(cli, ["hub", "check"])
    assert res.exit_code == 0, res.output
    assert "auth       dummy" in res.output and "alice" in res.output
    assert "(hub service)" in res.output and str(PROXY) in res.output
    res = CliRunner().invoke(cli, ["hub", "run", "--dry-run"])
    assert res.exit_code == 0 and "-m jupyterhub -f" in res.output
    assert (tmp_path / "hub" / "jupyterhub_config.py").read_text() == CONFIG_FILE
    monkeypatch.setenv("JAAS_HUB_AUTH", "kerberos")
    res = subprocess.run([sys.executable, "-m", "jaas.cli.main", "hub", "check"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode != 0
    assert res.stderr.strip() == "error: JAAS_HUB_AUTH='kerberos': give one of dummy, pam, oidc"
