"""Methods: the baselines (chain of thought, self-consistency, debate, Mixture-of-Agents) with their
versioned prompts; the EcoNash method is in the ``econash`` subpackage."""
