"""Built-in prompt strategies. Importing this package registers them."""
