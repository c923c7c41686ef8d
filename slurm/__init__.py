"""The SLURM array task script, installed as package data (vendomini_eval.slurm_scripts) for `vendomini slurm`."""
