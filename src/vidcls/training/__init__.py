"""Training runs: the config, the loop, run state, the schedule, distributed processes, the linear probe."""
