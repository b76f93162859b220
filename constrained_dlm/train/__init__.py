"""Training pipeline for the embedded default model: synthetic corpus, BPE tokenizer, MDLM training."""
