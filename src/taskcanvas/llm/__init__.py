"""Chat models: one protocol (:mod:`.protocol`), providers for OpenAI-compatible endpoints and
Anthropic, and the configuration that maps ragflow ``llm_id`` values to them."""
