"""Twin summaries: Dask and xarray over a run's Zarr store (no MPI, no PETSc).

``summarize`` turns a run store into a summary store; ``report`` renders a summary as one HTML page;
``compare`` sets summaries side by side; ``alerts`` evaluates rules on a summary. The summary layout is
in ``layout``.
"""
