"""What the hosted providers accept: model profiles, request settings, provider presets."""
