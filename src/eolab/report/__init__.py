"""The workflow report's shared pieces: one chart style (`eolab.report.style`) for every stage.

Every chart of the Snakemake report takes its colours, order of formats and storages, number
formats, run-conditions caption and PNG writer from here, so a format or a storage looks the
same on every chart and the same results give the same bytes.
"""
