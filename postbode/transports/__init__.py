"""Transports: where messages go (outbox folder, SMTP server, provider API), named by URL."""
