"""The batch interfaces of the hosted backends: OpenAI's Batch API (:mod:`.openai`) and
Anthropic's Message Batches (:mod:`.anthropic`), on the backend's own SDK client
(:mod:`.sdk`). A backend offers one through :meth:`~mike_sdk.backend.Backend.batches`;
the runner (:mod:`mike_sdk.batch.runner`) sees only the
:class:`~mike_sdk.batch.provider.BatchProvider` protocol."""
