"""The batch-script templates and site profiles, installed as the data package brainsim.slurm (read through
brainsim.resources); local/ is the one-node test cluster and is not installed."""
