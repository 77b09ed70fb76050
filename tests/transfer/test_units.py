from __future__ import annotations

import math
from pathlib import Path

import pytest

from jaas.errors import ConfigError, JaasError, TransferError
from jaas.transfer.checksum import adler32_file, canonical_adler32
from jaas.transfer.config import load_topology, parse_topology
from jaas.transfer.errors import TransferFailure, backoff, classify_message
from jaas.transfer.routing import LinkQuality, choose_routes
from jaas.transfer.states import TERMINAL, Event, RequestState, step

SITES = """\
sites:
  CENTRAL: {root: /c, intermediate: true}
  CNAF: {root: /n, intermediate: true}
  JINR: {root: "root://127.0.0.1:1094//data"}
"""


def test_canonical_adler32_is_eight_lower_hex_zero_padded(tmp_path: Path) -> None:
    assert canonical_adler32("ABC") == "00000abc"
    assert canonical_adler32("0x1") == "00000001"
    assert canonical_adler32(255) == "000000ff"
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert adler32_file(empty) == "00000001"
    with pytest.raises(ConfigError, match="not an adler32"):
        canonical_adler32("xyz")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites:\n  A: {tier: 1}\n", r"s.yaml:2: sites.A: missing key 'root'"),
        ("sites:\n  A: {root: /a, colour: red}\n", r"s.yaml:2: sites.A.colour: unknown key"),
        (
            SITES + "links:\n  - {from: CENTRAL, to: CERN}\n",
            r"s.yaml:6: links.0.to: unknown site 'CERN'",
        ),
        (
            SITES + "rules:\n  - {kind: raw, copies: 4, sites: [CNAF, JINR]}\n",
            r"s.yaml:6: rules.0.copies: expected 1..2",
        ),
        (
            SITES + "rules:\n  - {copies: 1, sites: [CNAF]}\n",
            r"s.yaml:6: rules.0: a rule needs 'kind'",
        ),
        (
            SITES + "links:\n  - {from: CENTRAL, to: JINR, success: 2}\n",
            r"links.0.success: expected a rate",
        ),
        (
            SITES + "hop_penalty: yes\n",
            r"s.yaml:5: hop_penalty: expected int or float, got a boolean",
        ),
        ("sites: [\n", r"s.yaml:2: not valid YAML"),
    ],
)
def test_bad_yaml_names_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_topology(text, "s.yaml")
    assert "\n" not in str(info.value)


def test_load_topology_reads_sites_links_and_rules(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(
        SITES
        + "links:\n  - {from: CENTRAL, to: JINR, disabled: true}\n"
        + "rules:\n  - {name: t1, kind: raw, copies: 1, sites: [CNAF, JINR], deadline_hours: 2}\n"
    )
    topo = load_topology(path)
    assert topo.sites["JINR"].scheme == "root" and topo.sites["CNAF"].scheme == "file"
    assert topo.link("CENTRAL", "JINR").disabled and not topo.link("JINR", "CENTRAL").disabled
    assert topo.rules[0].deadline_hours == 2.0
    with pytest.raises(ConfigError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")


def test_routing_prefers_direct_then_routes_around_bad_or_cut_links() -> None:
    topo = parse_topology(SITES)
    [best, *_] = choose_routes(topo, {}, ["CENTRAL"], "JINR")
    assert best.sites == ("CENTRAL", "JINR")
    bad = {("CENTRAL", "JINR"): LinkQuality(successes=1, failures=9)}
    [best, *_] = choose_routes(topo, bad, ["CENTRAL"], "JINR")
    assert best.sites == ("CENTRAL", "CNAF", "JINR") and best.via == ("CNAF",)
    # one failure is not enough to pay the hop penalty
    once = {("CENTRAL", "JINR"): LinkQuality(successes=20, failures=1)}
    assert choose_routes(topo, once, ["CENTRAL"], "JINR")[0].sites == ("CENTRAL", "JINR")
    cut = parse_topology(SITES + "links:\n  - {from: CENTRAL, to: JINR, disabled: true}\n")
    routes = choose_routes(cut, {}, ["CENTRAL"], "JINR")
    assert all(r.sites != ("CENTRAL", "JINR") for r in routes)
    assert routes[0].sites == ("CENTRAL", "CNAF", "JINR") and math.isfinite(routes[0].cost)
    forced = parse_topology(SITES + "links:\n  - {from: CENTRAL, to: JINR, via: [CNAF]}\n")
    assert [r.sites for r in choose_routes(forced, {}, ["CENTRAL"], "JINR")] == [
        ("CENTRAL", "CNAF", "JINR")
    ]
    static = parse_topology(SITES + "links:\n  - {from: CENTRAL, to: JINR, success: 0.2}\n")
    assert choose_routes(static, {}, ["CENTRAL"], "JINR")[0].via == ("CNAF",)


def test_state_machine_happy_path_and_wait_reasons() -> None:
    st = RequestState()
    st = step(st, Event("submit", route=("A", "B", "C")), now=0)
    assert st.state == "submitted" and st.route == ("A", "B", "C")
    st = step(st, Event("start"), now=0)
    st = step(st, Event("hop", "waiting for hop via B"), now=0)
    assert st.state == "transferring" and st.wait_reason == "waiting for hop via B"
    st = step(st, Event("copied"), now=0)
    assert st.state == "verifying" and st.wait_reason
    st = step(st, Event("verified"), now=0)
    assert st.state == "done" and st.wait_reason is None
    with pytest.raises(TransferError, match="request is done"):
        step(st, Event("start"), now=0)
    assert step(st, Event("reset"), now=5).state == "queued"


def test_state_machine_errors_backoff_stuck_and_failed() -> None:
    st = step(RequestState(), Event("submit", route=("A", "B")), now=0)
    st = step(st, Event("error", "timed out", error_class="timeout"), now=100, max_attempts=2)
    assert (st.state, st.attempts, st.next_try) == ("retrying", 1, 130.0)
    st = step(st, Event("retry_due"), now=130)
    st = step(st, Event("submit", route=("A", "B")), now=130)
    st = step(st, Event("error", "timed out", error_class="timeout"), now=140, max_attempts=2)
    assert st.state == "stuck" and "gave up after 2 attempts" in (st.wait_reason or "")
    st = step(RequestState(), Event("error", "gone", error_class="not_found"), now=0)
    assert st.state == "failed" and st.state in TERMINAL and st.wait_reason is None
    st = step(RequestState(), Event("present"), now=0)
    assert st.state == "done"
    with pytest.raises(TransferError, match="does not apply"):
        step(RequestState(), Event("copied"), now=0)
    with pytest.raises(TransferError, match="needs a wait reason"):
        RequestState("queued", None)


def test_error_classes_and_backoff_per_class() -> None:
    assert backoff("timeout", 1) == 30 and backoff("timeout", 3) == 120
    assert backoff("no_space", 1) == 300
    assert backoff("timeout", 50) == 1800  # capped
    with pytest.raises(ValueError, match="permanent"):
        backoff("not_found", 1)
    assert (
        classify_message("[ERROR] Server responded with an error: [3011] No such file")
        == "not_found"
    )
    assert classify_message("[FATAL] Connection refused") == "connection"
    assert classify_message("Operation expired") == "token_expired"
    assert classify_message("No space left on device") == "no_space"
    assert classify_message("checksum mismatch") == "checksum_mismatch"
    err = TransferFailure("token refused", "token_refused")
    assert err.permanent and isinstance(err, JaasError)
    assert not TransferFailure("x", "timeout").permanent
