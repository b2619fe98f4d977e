"""Where a job's script runs: the Executor port and its implementations."""
