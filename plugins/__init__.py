"""tinyhil's pytest plugins: the case matrix, targets, reporting and expected verdicts."""
