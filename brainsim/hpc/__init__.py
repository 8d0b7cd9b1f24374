"""HPC workflow: site profiles, SLURM batch scripts, run planning, submission, campaigns and status."""
