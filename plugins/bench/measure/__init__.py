"""Measurement on a board: the steps of a bench case, replies to verdicts, energy."""
