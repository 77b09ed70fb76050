"""Reconstruction: energy, vertex, event class and muon track from hits."""
