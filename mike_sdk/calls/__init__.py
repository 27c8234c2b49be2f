"""The one call path: every backend call goes through the response cache, the call guard
(rate limits, retries, budget), cost accounting and one concurrency limit."""
