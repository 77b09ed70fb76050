"""HTCondor executor, offline: submit description, argument quoting, status mapping, errors.

No schedd exists on test machines; submit/query/remove run against a stand-in schedd.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jaas.errors import PipelineError
from jaas.kup.executors import ExecutorStatus, JobSpec, get_executor
from jaas.kup.executors.htcondor import (
    HTCondorExecutor,
    condor_arguments,
    map_condor_ad,
    submit_description,
)

htcondor2 = pytest.importorskip("htcondor2", reason="pip install htcondor")


def test_arguments_use_htcondor_quoting():
    assert condor_arguments(["-c", "print('hi there')", 'say "x"', ""]) == (
        "\"-c 'print(''hi there'')' 'say \"\"x\"\"' ''\""
    )
    assert condor_arguments(["plain", "a=b"]) == '"plain a=b"'
    with pytest.raises(PipelineError, match="newline"):
        condor_arguments(["a\nb"])


def test_submit_description_of_a_jobspec(tmp_path):
    spec = JobSpec(
        "reco:run1_0001.raw#2",
        ["python3", "-m", "x", "it's"],
        tmp_path / "a.log",
        timeout=90.5,
        cpus=4,
        memory_mb=3000,
        cwd=tmp_path,
        env={"JAAS_PROGRESS": "0", "X": "a b"},
    )
    d = submit_description(spec, extra={"accounting_group": "juno.prod"})
    assert d["executable"].endswith("python3") and Path(d["executable"]).is_absolute()
    assert d["arguments"] == "\"-m x 'it''s'\""
    assert (d["output"], d["error"]) == (str(tmp_path / "a.log"),) * 2
    assert d["log"] == f"{tmp_path / 'a.log'}.condor.log"
    assert (d["request_cpus"], d["request_memory"]) == ("4", "3000")
    assert d["initialdir"] == str(tmp_path)
    assert d["environment"] == "\"JAAS_PROGRESS=0 'X=a b'\""
    assert d["periodic_remove"] == "(JobStatus == 2) && (time() - JobCurrentStartDate > 91)"
    assert d["My.JaasAttempt"] == '"reco:run1_0001.raw#2"'
    assert d["accounting_group"] == "juno.prod"
    sub = htcondor2.Submit(d)  # the bindings accept it
    assert "request_cpus = 4" in str(sub)


def test_job_classad_expressions_parse():
    classad2 = pytest.importorskip("classad2")
    d = submit_description(JobSpec("t", ["true"], Path("/tmp/t.log"), timeout=5))
    expr = classad2.ExprTree(d["periodic_remove"])
    ad = classad2.ClassAd({"JobStatus": 2, "JobCurrentStartDate": 0})
    assert expr.eval(ad) is True  # started at the epoch: long past the limit
    ad["JobCurrentStartDate"] = 2**40
    assert expr.eval(ad) is False


@pytest.mark.parametrize(
    ("ad", "expected"),
    [
        ({"JobStatus": 1}, (ExecutorStatus.RUNNING, None)),
        ({"JobStatus": 2}, (ExecutorStatus.RUNNING, None)),
        ({"JobStatus": 4, "ExitCode": 0}, (ExecutorStatus.SUCCEEDED, 0)),
        ({"JobStatus": 4, "ExitCode": 3}, (ExecutorStatus.FAILED, 3)),
        ({"JobStatus": 4, "ExitBySignal": True, "ExitSignal": 9}, (ExecutorStatus.FAILED, -9)),
        (
            {
                "JobStatus": 3,
                "RemoveReason": "The job attribute PeriodicRemove expression "
                "'(JobStatus == 2)' evaluated to TRUE",
            },
            (ExecutorStatus.TIMED_OUT, None),
        ),
        ({"JobStatus": 3, "RemoveReason": "via condor_rm"}, (ExecutorStatus.CANCELLED, None)),
        ({"JobStatus": 5, "HoldReason": "disk full"}, (ExecutorStatus.FAILED, None)),
    ],
)
def test_job_status_codes_map(ad, expected):
    st = map_condor_ad(ad)
    assert (st.status, st.exit_code) == expected


def test_no_schedd_is_a_clear_pipeline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDOR_CONFIG", str(tmp_path / "none"))
    ex = get_executor("htcondor", slots=2)
    with pytest.raises(PipelineError, match=r"no HTCondor schedd reachable .*CONDOR_CONFIG"):
        ex.submit(JobSpec("t", [sys.executable, "-V"], tmp_path / "t.log"))


class FakeSchedd:
    """Stands in for htcondor2.Schedd: remembers submits, answers queries from a table."""

    def __init__(self):
        self.queue: dict[int, dict] = {}
        self.history_ads: dict[int, dict] = {}
        self.submitted = []
        self.removed = []

    def submit(self, description, count=1):
        cluster = 100 + len(self.submitted)
        self.submitted.append(dict(description))
        self.queue[cluster] = {"ClusterId": cluster, "JobStatus": 1}

        class Result:
            def cluster(self):
                return cluster

        return Result()

    def query(self, constraint, projection):
        ids = {int(p.split("==")[1]) for p in constraint.split("||")}
        return [ad for c, ad in self.queue.items() if c in ids]

    def history(self, constraint, projection, match=-1):
        ids = {int(p.split("==")[1]) for p in constraint.split("||")}
        return [ad for c, ad in self.history_ads.items() if c in ids]

    def act(self, action, constraint, reason):
        self.removed.append((action, constraint, reason))


def test_submit_poll_cancel_against_a_stand_in_schedd(tmp_path):
    schedd = FakeSchedd()
    ex = HTCondorExecutor(slots=2, schedd=schedd, poll_interval=0)
    h1 = ex.submit(JobSpec("one", ["/bin/true"], tmp_path / "1.log"))
    h2 = ex.submit(JobSpec("two", ["/bin/false"], tmp_path / "2.log"))
    assert (h1.id, h2.id, ex.free_slots()) == ("100", "101", 0)
    with pytest.raises(PipelineError, match="2 HTCondor jobs already in flight"):
        ex.submit(JobSpec("three", ["/bin/true"], tmp_path / "3.log"))
    assert schedd.submitted[0]["executable"] == "/bin/true"
    assert ex.poll(h1).status is ExecutorStatus.RUNNING
    # job 100 leaves the queue and is found in the history; job 101 is held
    del schedd.queue[100]
    schedd.history_ads[100] = {"ClusterId": 100, "JobStatus": 4, "ExitCode": 0}
    schedd.queue[101] = {"ClusterId": 101, "JobStatus": 5, "HoldReason": "no such file"}
    assert (ex.poll(h1).status, ex.poll(h1).exit_code) == (ExecutorStatus.SUCCEEDED, 0)
    assert ex.poll(h2).status is ExecutorStatus.FAILED
    assert schedd.removed[-1][1:] == ("ClusterId == 101", "held: no such file")
    h3 = ex.submit(JobSpec("three", ["/bin/sleep", "9"], tmp_path / "3.log"))
    ex.cancel(h3)
    assert ex.poll(h3).status is ExecutorStatus.CANCELLED
    assert schedd.removed[-1][0] == htcondor2.JobAction.Remove
