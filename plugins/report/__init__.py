"""The reports of a run: CSV rows, the summary, plots, the HTML page, baselines, expectations."""
