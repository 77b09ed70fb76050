"""Analysis engine: selections, coincidences, vetoes and exposure over index columns."""
