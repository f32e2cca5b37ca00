"""Data files the matcher and the duplicate job read: their fitted evidence weights and the
given-name forms."""
