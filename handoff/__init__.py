"""Hand-off of a conversation from the bot to a loan officer."""
