"""Charts and pages of the Snakemake report, one module per workflow stage (rules/report.smk).

``figure`` holds what every chart shares; ``sentinel2``, ``benv2``, ``chips`` draw their stage's
charts from the files the stage writes; ``provenance`` writes the report's provenance page.
"""
