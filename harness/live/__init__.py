"""Stage 4: walking a plan on a cluster: install, wait, runs, evidence collection, migration, security probes."""
