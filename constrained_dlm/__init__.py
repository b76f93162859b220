"""constrained-dlm: structured generation and constrained infilling with masked diffusion LMs."""
