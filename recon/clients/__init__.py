"""The clients for Xero and Nexudus, and what they share: pacing, retries, tokens, time zones."""
