"""`mike serve`: an OpenAI-compatible server that applies an edit memory."""
