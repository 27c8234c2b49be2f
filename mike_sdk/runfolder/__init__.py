"""A run folder on disk: its files' models, locked appends, the spending ledger, the
stored prompts, and the flat export."""
