"""`hearth dev`'s private Synapse: its config, its process and the demo stack."""
