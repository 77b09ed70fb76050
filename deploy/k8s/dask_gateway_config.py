"""dask-gateway server config for jaas clusters (``gateway.extraConfig.jaas`` of the chart).

Schedulers preload the jaas file-ownership registry and workers the jaas column cache, so
a gateway cluster runs ``ds.ibd(client=...)`` like ``jaas cluster up``; users choose the
worker size within limits.
"""

# ruff: noqa: F821  (``c`` is the config object the gateway passes in)
from dask_gateway_server.options import Float, Integer, Options

c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
c.KubeClusterConfig.image = "jaas/user:dev"
c.KubeClusterConfig.environment = {
    "DASK_DISTRIBUTED__SCHEDULER__PRELOAD": "jaas.cluster.registry",
    "DASK_DISTRIBUTED__WORKER__PRELOAD": "jaas.cluster.worker",
    "JAAS_CACHE_BYTES": "3GiB",
}
c.KubeClusterConfig.worker_threads = 2
c.KubeClusterConfig.cluster_max_workers = 20
c.KubeClusterConfig.idle_timeout = 3600


def _options(options, user):  # type: ignore[no-untyped-def]
    return {"worker_cores": options.worker_cores, "worker_memory": int(options.worker_gb * 2**30)}


c.Backend.cluster_options = Options(
    Integer("worker_cores", 2, min=1, max=4, label="Worker cores"),
    Float("worker_gb", 8, min=2, max=16, label="Worker memory (GiB)"),
    handler=_options,
)
