"""The shipped configs, installed as the data package brainsim.configs (read through brainsim.resources)."""
