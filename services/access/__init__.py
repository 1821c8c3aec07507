"""Who may reach what: users and their sessions, upload tokens, signed audio links, share links and rate limits."""
