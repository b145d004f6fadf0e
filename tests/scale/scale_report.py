"""The scale check's measured figures, filled by the tests and printed at the end of the run."""

FIGURES: dict = {}
