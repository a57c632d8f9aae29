"""The workflow report: one chart style (`eolab.report.style`) and one module per stage.

Every chart of the Snakemake report takes its colours, order of formats and storages, number
formats, run-conditions caption and PNG writer from `style`, so a format or a storage looks the
same on every chart and the same results give the same bytes. `figure` adds the check every
stage chart passes before it is written (title, labelled axes, data); ``sentinel2``, ``benv2``,
``chips`` draw their stage's charts from the files the stage writes (rules/report.smk);
``provenance`` writes the report's provenance page.
"""
