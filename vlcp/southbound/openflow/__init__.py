"""OpenFlow 1.3+ with the Nicira extensions: flows as values, a codec, an asyncio channel."""
