"""The EcoNash method, whole: the episode (``method``), rewards, the learner and its networks,
replay buffer and action grid, its options and its versioned prompts. Torch is imported only by
the learner's modules, so importing the method's options stays light."""
