"""The sweep layer: an experiment's grid planned into shards (`plan`) and run by a backend: this machine
(`local`), a Ray cluster (`ray_cluster`) or a SLURM array job (`slurm`). Each shard is one eval_set call of the
generic task (`shard`); `run` holds a log dir for one sweep at a time. Planning never imports Inspect."""
