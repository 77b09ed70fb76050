"""Stages YAML: the default chain loads; errors name the file, the line and the key."""

from __future__ import annotations

import textwrap

import pytest

from jaas.errors import ConfigError
from jaas.kup.config import load_stages

GOOD = """\
stages:
  - name: a
    input: t.a
    output: t.b
    entry: jaas.kup.stages:copy
    resources: {cpus: 2, memory: 2GB}
    timeout: 30
    retries: 1
    version: 3
  - name: b
    input: t.b
    command: ["{python}", "-c", "pass", "{input}"]
"""


def write(tmp_path, text):
    p = tmp_path / "stages.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_default_chain():
    cfg = load_stages()
    assert [s.name for s in cfg.stages] == ["ingest", "rtraw", "reco", "index", "publish"]
    assert cfg.next_stage("ingest").name == "rtraw"
    assert cfg.next_stage("publish") is None


def test_good_file(tmp_path):
    cfg = load_stages(write(tmp_path, GOOD))
    a = cfg.stage("a")
    assert (a.resources.cpus, a.resources.memory_mb, a.version) == (2, 2048, "3")
    assert a.retry_policy.retries == 1
    assert cfg.stage("b").command == ["{python}", "-c", "pass", "{input}"]


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        ("    timeout: 30", "    timeout: -1", 7, "stages[0].timeout", "greater than 0"),
        ("    retries: 1", "    retries: many", 8, "stages[0].retries", "integer"),
        ("    input: t.b", "    input: t.b\n    colour: red", 12, "stages[1].colour", "Extra"),
        ("{cpus: 2, memory: 2GB}", "{cpus: 2, memory: lots}", 6, "stages[0].resources", "lots"),
        (
            '    command: ["{python}", "-c", "pass", "{input}"]',
            '    command: "rm -rf /"',
            12,
            "stages[1].command",
            "not a shell string",
        ),
        ("    entry: jaas.kup.stages:copy", "    entry: copy", 5, "stages[0].entry", "module:func"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, old, new, line, key, words):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_stages(path)
    msg = str(err.value)
    assert f"{path}:{line}: {key}: " in msg
    assert words in msg


def test_missing_action_and_broken_chain(tmp_path):
    path = write(
        tmp_path,
        """\
        stages:
          - name: a
            input: t.a
            output: t.nowhere
            entry: m:f
          - name: b
            input: t.b
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_stages(path)
    msg = str(err.value)
    assert f"{path}:6: stages[1]: give exactly one of 'entry'" in msg


def test_output_topic_must_feed_a_stage(tmp_path):
    path = write(tmp_path, GOOD.replace("output: t.b", "output: t.x"))
    with pytest.raises(ConfigError, match=r"output topic 't.x' is no stage's input"):
        load_stages(path)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "stages:\n  - name: [a\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_stages(path)


def test_unknown_stage_lists_known(tmp_path):
    cfg = load_stages(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no stage 'c' \(stages: a, b\)"):
        cfg.stage("c")
