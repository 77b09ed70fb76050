"""Detector simulation: event sources, detector response, RAW and index-level output."""
