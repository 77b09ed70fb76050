"""The Kubernetes deployment, validated offline (no API server here): the YAML parses,
chart keys are ones the zero-to-jupyterhub / dask-gateway charts know, the hub and
gateway configs load into the packages' own traitlets classes, and the user image's
Dockerfile copies files that exist and installs extras that exist."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.hub.conftest import REPO

K8S = REPO / "deploy" / "k8s"
pytest.importorskip("jupyterhub")  # the hub extra
from traitlets.config import Config  # noqa: E402

# top-level and nested keys of the charts' values.schema (z2jh 4.x, dask-gateway 2024.x)
Z2JH = {
    "": {"hub", "proxy", "singleuser", "scheduling", "prePuller", "ingress", "cull", "debug",
         "rbac", "global", "imagePullSecret", "imagePullSecrets", "custom", "fullnameOverride",
         "nameOverride", "enabled"},
    "hub": {"config", "services", "extraConfig", "extraEnv", "image", "db", "resources",
            "existingSecret", "cookieSecret", "baseUrl", "networkPolicy", "nodeSelector",
            "loadRoles", "allowNamedServers", "concurrentSpawnLimit", "service"},
    "proxy": {"service", "chp", "traefik", "https", "secretToken", "secretSync"},
    "singleuser": {"image", "defaultUrl", "cmd", "memory", "cpu", "storage", "extraEnv",
                   "profileList", "networkPolicy", "nodeSelector", "lifecycleHooks",
                   "serviceAccountName", "uid", "fsGid", "startTimeout", "extraResource"},
    "singleuser.memory": {"limit", "guarantee"},
    "singleuser.cpu": {"limit", "guarantee"},
    "singleuser.image": {"name", "tag", "pullPolicy", "pullSecrets"},
    "cull": {"enabled", "timeout", "every", "users", "adminUsers", "removeNamedServers",
             "concurrency", "maxAge"},
}  # fmt: skip
GATEWAY = {
    "": {"gateway", "controller", "traefik", "rbac", "global", "fullnameOverride",
         "nameOverride"},
    "gateway": {"replicas", "annotations", "resources", "loglevel", "image", "service",
                "auth", "livenessProbe", "readinessProbe", "backend", "nodeSelector",
                "affinity", "tolerations", "extraConfig", "prefix", "env", "extraPodConfig",
                "extraContainerConfig", "imagePullSecrets"},
    "gateway.auth": {"type", "simple", "kerberos", "jupyterhub", "custom"},
    "gateway.auth.jupyterhub": {"apiToken", "apiTokenFromSecretName", "apiTokenFromSecretKey",
                                "apiUrl"},
    "gateway.backend": {"image", "imagePullSecrets", "namespace", "environment", "scheduler",
                        "worker"},
    "gateway.backend.worker": {"extraPodConfig", "extraContainerConfig", "cores", "memory",
                               "threads"},
    "gateway.backend.scheduler": {"extraPodConfig", "extraContainerConfig", "cores", "memory"},
}  # fmt: skip


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def _check_keys(values: dict, known: dict[str, set[str]]) -> None:
    for path, allowed in known.items():
        node = values
        for part in filter(None, path.split(".")):
            node = node.get(part, {})
        unknown = set(node) - allowed
        assert not unknown, f"unknown chart keys under {path or 'top level'}: {unknown}"


def _check_traits(config: Config, classes: dict[str, type]) -> None:
    for section, traits in config.items():
        assert section in classes, f"config section {section} is not a known class"
        known = classes[section].class_traits(config=True)
        unknown = set(traits) - set(known)
        assert not unknown, f"{section} has no traits {unknown}"


def test_z2jh_values_use_chart_keys_and_load_into_the_hub_classes(caplog) -> None:
    from jupyterhub.app import JupyterHub
    from jupyterhub.auth import Authenticator
    from jupyterhub.spawner import Spawner
    from oauthenticator.generic import GenericOAuthenticator

    values = _load("jupyterhub-values.yaml")
    _check_keys(values, Z2JH)
    config = Config(values["hub"]["config"])
    _check_traits(config, {"JupyterHub": JupyterHub, "Authenticator": Authenticator,
                           "GenericOAuthenticator": GenericOAuthenticator})  # fmt: skip
    auth = GenericOAuthenticator(config=config)  # types checked by traitlets
    assert not [r.message for r in caplog.records if "deprecated" in r.message]
    assert auth.authorize_url.startswith("https://") and auth.scope == ["openid", "profile",
                                                                       "email"]  # fmt: skip
    su = values["singleuser"]
    spawner = Spawner(config=Config({"Spawner": {
        "mem_limit": su["memory"]["limit"], "mem_guarantee": su["memory"]["guarantee"],
        "cpu_limit": float(su["cpu"]["limit"]), "cpu_guarantee": float(su["cpu"]["guarantee"]),
    }}))  # fmt: skip
    assert spawner.mem_limit == 8 * 2**30 and spawner.cpu_limit == 4
    env = su["extraEnv"]
    middleware = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(
        (K8S / "middleware.yaml").read_text())}  # fmt: skip
    port = middleware["Service", "jaas-scheduler"]["spec"]["ports"][0]["port"]
    assert env["JAAS_SCHEDULER"] == f"tcp://jaas-scheduler:{port}"
    from jaas.settings import settings

    assert settings(env).cache_bytes == 2 * 2**30
    # the gateway trusts the hub with the same token
    gw = _load("dask-gateway-values.yaml")["gateway"]["auth"]["jupyterhub"]
    assert values["hub"]["services"]["dask-gateway"]["apiToken"] == gw["apiToken"]


def test_dask_gateway_config_loads_into_the_gateway_classes() -> None:
    pytest.importorskip("dask_gateway_server")
    pytest.importorskip("kubernetes_asyncio")
    from dask_gateway_server.app import DaskGateway
    from dask_gateway_server.backends.base import Backend
    from dask_gateway_server.backends.kubernetes.backend import KubeBackend, KubeClusterConfig

    _check_keys(_load("dask-gateway-values.yaml"), GATEWAY)
    app = DaskGateway()
    app.load_config_file(str(K8S / "dask_gateway_config.py"))
    _check_traits(app.config, {"DaskGateway": DaskGateway, "Backend": Backend,
                               "KubeBackend": KubeBackend,
                               "KubeClusterConfig": KubeClusterConfig})  # fmt: skip
    cc = KubeClusterConfig(config=app.config)
    assert cc.environment["DASK_DISTRIBUTED__WORKER__PRELOAD"] == "jaas.cluster.worker"
    assert cc.environment["DASK_DISTRIBUTED__SCHEDULER__PRELOAD"] == "jaas.cluster.registry"
    import importlib

    for module in ("jaas.cluster.worker", "jaas.cluster.registry"):
        assert hasattr(importlib.import_module(module), "dask_setup")
    options = app.config.Backend.cluster_options
    parsed = options.parse_options({"worker_cores": 3, "worker_gb": 4})
    assert options.get_configuration(parsed, None) == {"worker_cores": 3,
                                                       "worker_memory": 4 * 2**30}  # fmt: skip
    with pytest.raises(ValueError, match="worker_cores"):
        options.parse_options({"worker_cores": 64})


def test_middleware_manifests_use_the_jaas_preloads() -> None:
    docs = list(yaml.safe_load_all((K8S / "middleware.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Service", "Deployment", "StatefulSet"]
    for d in docs[1:]:
        [container] = d["spec"]["template"]["spec"]["containers"]
        assert d["spec"]["selector"]["matchLabels"] == d["spec"]["template"]["metadata"]["labels"]
        cmd = container["command"]
        assert cmd[cmd.index("--preload") + 1] in {"jaas.cluster.registry", "jaas.cluster.worker"}


def test_user_image_dockerfile_copies_existing_files_and_extras() -> None:
    text = (K8S / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.replace("\\\n", " ").splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert code[0].startswith("FROM ")
    copies = [ln.split()[1:-1] for ln in lines if ln.startswith("COPY ")]
    assert copies
    for sources in copies:
        for src in sources:
            assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]  # fmt: skip
    installs = re.findall(r"pip install [^']*'\.\[([a-z,]+)\]'", text)
    assert installs
    for group in installs:
        for extra in group.split(","):
            assert extra in extras, f"the Dockerfile installs unknown extra {extra!r}"
    assert "jupyterhub-singleuser" in text
