"""The pure job state machine: every legal transition, backoff, illegal events."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from jaas.errors import PipelineError
from jaas.kup.states import (
    Cancel,
    Classification,
    EmitNext,
    Fail,
    JobKey,
    JobState,
    KillJob,
    PublishStage,
    Reset,
    Retry,
    RetryPolicy,
    ScheduleRetry,
    SendToDeadLetter,
    Start,
    State,
    Submit,
    Succeed,
    Timeout,
    transition,
)

KEY = JobKey("run7_0003.raw", "rtraw", "2")
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T = Classification.TRANSIENT
D = Classification.DETERMINISTIC


def job(state: State, attempts: int = 0) -> JobState:
    return JobState(KEY, state, attempts)


def test_happy_path_emits_next_stage():
    j, todo = transition(JobState(KEY), Submit(), now=NOW)
    assert (j.state, todo) == (State.QUEUED, [PublishStage(KEY)])
    j, todo = transition(j, Start(), now=NOW)
    assert (j.state, j.attempts, todo) == (State.RUNNING, 1, [])
    j, todo = transition(j, Succeed(), now=NOW)
    assert (j.state, todo) == (State.DONE, [EmitNext(KEY)])


def test_transient_failure_retries_with_exponential_backoff_then_dies():
    policy = RetryPolicy(retries=2, base_delay=10, factor=3, max_delay=1000)
    j = job(State.QUEUED)
    delays = []
    for _ in range(2):
        j, _ = transition(j, Start(), policy=policy, now=NOW)
        j, todo = transition(j, Fail(T, "disk full"), policy=policy, now=NOW)
        assert j.state is State.RETRYING
        assert j.last_reason == "disk full"
        (ins,) = todo
        assert isinstance(ins, ScheduleRetry)
        assert ins.at == NOW + dt.timedelta(seconds=ins.delay)
        assert j.retry_at == ins.at
        delays.append(ins.delay)
        j, todo = transition(j, Retry(), policy=policy, now=NOW)
        assert (j.state, todo) == (State.QUEUED, [PublishStage(KEY)])
    assert delays == [10, 30]
    j, _ = transition(j, Start(), policy=policy, now=NOW)
    j, todo = transition(j, Fail(T, "disk full"), policy=policy, now=NOW)
    assert j.state is State.DEAD
    assert j.attempts == 3
    assert j.last_reason == "gave up after 3 attempts: disk full"
    assert todo == [SendToDeadLetter(KEY, j.last_reason)]


def test_backoff_is_capped():
    assert RetryPolicy(retries=10, base_delay=1, factor=10, max_delay=50).delay(5) == 50


def test_deterministic_failure_is_dead_at_once():
    j, todo = transition(job(State.RUNNING, 1), Fail(D, "bad magic at byte 0"))
    assert j.state is State.DEAD
    assert "bad magic at byte 0" in (j.last_reason or "")
    assert isinstance(todo[0], SendToDeadLetter)


def test_timeout_is_transient_and_names_the_limit():
    j, todo = transition(job(State.RUNNING, 1), Timeout(30), now=NOW)
    assert j.state is State.RETRYING
    assert j.last_reason == "timed out after 30 s"
    assert isinstance(todo[0], ScheduleRetry)


def test_cancel_kills_only_a_running_attempt():
    j, todo = transition(job(State.RUNNING, 1), Cancel())
    assert (j.state, todo) == (State.FAILED, [KillJob(KEY)])
    j, todo = transition(job(State.QUEUED), Cancel("operator said so"))
    assert (j.state, j.last_reason, todo) == (State.FAILED, "operator said so", [])


@pytest.mark.parametrize("state", [State.FAILED, State.DEAD, State.RETRYING])
def test_manual_retry_requeues_with_fresh_attempts(state):
    j, todo = transition(job(state, 4), Retry(manual=True))
    assert (j.state, j.attempts, todo) == (State.QUEUED, 0, [PublishStage(KEY)])


@pytest.mark.parametrize("state", list(State))
def test_reset_from_any_state_goes_pending(state):
    j, todo = transition(job(state, 2), Reset("redo with new calibration"))
    assert (j.state, j.attempts, j.last_reason) == (State.PENDING, 0, "redo with new calibration")
    assert todo == ([KillJob(KEY)] if state is State.RUNNING else [])


LEGAL = {
    State.PENDING: {"Submit", "Reset"},
    State.QUEUED: {"Start", "Cancel", "Reset"},
    State.RUNNING: {"Succeed", "Fail", "Timeout", "Cancel", "Reset"},
    State.RETRYING: {"Retry", "RetryManual", "Cancel", "Reset"},
    State.DONE: {"Reset"},
    State.FAILED: {"RetryManual", "Reset"},
    State.DEAD: {"RetryManual", "Reset"},
}
EVENTS = {
    "Submit": Submit(),
    "Start": Start(),
    "Succeed": Succeed(),
    "Fail": Fail(T, "x"),
    "Timeout": Timeout(1),
    "Retry": Retry(),
    "RetryManual": Retry(manual=True),
    "Cancel": Cancel(),
    "Reset": Reset(),
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("name", list(EVENTS))
def test_illegal_transitions_raise_naming_file_stage_state_event(state, name):
    if name in LEGAL[state]:
        transition(job(state, 1), EVENTS[name])
        return
    with pytest.raises(PipelineError) as err:
        transition(job(state, 1), EVENTS[name])
    msg = str(err.value)
    for part in ("run7_0003.raw", "'rtraw'", "'2'", f"state {state.value!r}", "event"):
        assert part in msg
    assert type(EVENTS[name]).__name__.lower() in msg


class JobMachine(RuleBasedStateMachine):
    """Random event sequences: the state machine never loses track of attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = RetryPolicy(retries=2, base_delay=1)
        self.job = JobState(KEY)
        self.done_emits = 0

    @rule(
        name=st.sampled_from(sorted(EVENTS)),
        kind=st.sampled_from([T, D]),
    )
    def apply(self, name, kind):
        ev = Fail(kind, "boom") if name == "Fail" else EVENTS[name]
        legal = name in LEGAL[self.job.state]
        try:
            new, todo = transition(self.job, ev, policy=self.policy, now=NOW)
        except PipelineError:
            assert not legal
            return
        assert legal
        if new.state is State.DONE:
            assert todo == [EmitNext(KEY)]
        if new.state is State.DEAD:
            assert any(isinstance(i, SendToDeadLetter) for i in todo)
        self.job = new

    @invariant()
    def attempts_within_limit(self):
        assert 0 <= self.job.attempts <= self.policy.retries + 1
        assert (self.job.retry_at is not None) == (self.job.state is State.RETRYING)


TestJobMachine = JobMachine.TestCase
TestJobMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
