"""Data files the matcher reads: the fitted evidence weights and the given-name forms."""
