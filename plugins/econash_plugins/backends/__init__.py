"""LLM backends: in-process llama.cpp (local) and the OpenAI, Together and Anthropic APIs."""
