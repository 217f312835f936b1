"""The experiments built on the checker: Hebbian baseline, spectra, mechanism,
two-layer memories, top-k criteria, and the figures."""
