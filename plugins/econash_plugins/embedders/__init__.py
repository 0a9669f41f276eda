"""Text embedders for the econash method's observations: MiniLM, hashing, OpenAI and Together."""
