"""Where budget state lives: the store interface, the in-memory store, SQLite (one host) and Redis (many).

``SQLiteStore`` and ``RedisStore`` are imported from their own modules (Redis is an optional extra).
"""
