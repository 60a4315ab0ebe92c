"""The customer's conversation: relays each WeChat message to the bot and
delivers the answer exactly once, passively or through the customer-service
message API. Knows nothing of Flask."""
