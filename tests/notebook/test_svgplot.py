"""The panel's histograms as SVG: steps, error bars, round ticks, escaped labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from jaas.notebook.svgplot import hist_svg, hists_svg, nice_ticks


def test_nice_ticks_are_round_and_inside() -> None:
    assert nice_ticks(0.0, 2000.0) == [0.0, 500.0, 1000.0, 1500.0, 2000.0]
    assert nice_ticks(1.0, 5.0) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert nice_ticks(0.0, 0.3, 3) == [0.0, 0.1, 0.2, 0.3]
    assert nice_ticks(3.0, 3.0) == [3.0]


def test_svg_is_well_formed_and_follows_the_counts() -> None:
    edges = np.linspace(0.0, 12.0, 49)
    a = hist_svg(np.arange(48), edges, "prompt energy [MeV] <&>")
    root = ET.fromstring(a)  # well-formed XML: the label is escaped
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "prompt energy [MeV] <&>" in texts and "pairs / bin" in texts
    assert {"0", "5", "10"} <= set(texts)
    b = hist_svg(np.arange(48)[::-1], edges, "prompt energy [MeV] <&>")
    assert a != b
    empty = hist_svg(np.zeros(48), edges, "E")
    ET.fromstring(empty)  # no error bars, still valid
    one = (np.ones(3), np.arange(4.0), "x")
    both = hists_svg({"a": one, "b": one})
    assert both.count("<svg") == 2
