"""Measurement on a board: the steps of a bench case, latency statistics, replies to verdicts, energy."""
