"""Admission: defaulting (mutating) and validation of built-in kinds."""
