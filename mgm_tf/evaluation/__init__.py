"""Measuring what the pipeline made: feature extractors and the label judge, metrics (FID/KID,
precision/recall, memorisation, diversity), downstream utility, the evaluation driver, the
run report and its figures, and comparisons across runs."""
