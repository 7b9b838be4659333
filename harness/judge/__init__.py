"""Stage 6: bundles and findings judged: comparison, declared differences (policy), decisions, verdict rules."""
