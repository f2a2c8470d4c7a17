"""The report that links each checkpoint's pretraining to its downstream numbers (tools/report.py), and what it
stands on: the cell identity (`cells`), the per-image readers (`per_image`), the bootstrap (`bootstrap`), the paired
tests and Holm (`significance`), replicates over training seeds (`replicates`), the per-set OOD table
(`ood_sets`) and the paper's numbers (`paper`). `table` builds and writes the report.

Nothing is imported here: the evaluators use `report.bootstrap`'s statistics without loading the report itself.
"""
