"""How a dataset's windows are split into training and test: the names (light: read by the option table)."""

SPLITS = ("paper", "subjects")  # pooled 75/25 stratified and seeded | the dataset's official subject split
