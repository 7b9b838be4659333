"""Stage 5: the evidence bundle format (read, write, validate), noise normalisation and log classes."""
