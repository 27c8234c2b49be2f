"""Built-in backends. Importing this package registers them (heavy imports stay lazy).

``openai``, ``anthropic`` and their cloud variants (``azure-openai``,
``anthropic-bedrock``, ``anthropic-vertex``) register here but import their SDKs on
first call only;
``mock`` is a deterministic stand-in model for tests and strategy development.
"""

# Importing registers: "anthropic", "anthropic-bedrock", "anthropic-vertex", "azure-openai",
# "hf", "mock", "openai".
from . import anthropic, anthropic_cloud, azure_openai, hf, mock, openai  # noqa: F401
