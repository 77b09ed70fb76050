"""Apache Spark backend: ``ds.ibd(backend="spark://HOST:7077")`` or ``backend="local[4]"``.

See :class:`jaas.spark.backend.SparkBackend` and docs/cluster.md ("Spark").
"""

from __future__ import annotations

from jaas.spark.backend import SparkBackend, spark_conf

__all__ = ["SparkBackend", "spark_conf"]
