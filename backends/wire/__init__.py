"""What the hosted backends put on the wire: the provider SDKs' HTTP clients, traced so
that a request counts as in flight only once its body has left the process
(:mod:`.clients`)."""
