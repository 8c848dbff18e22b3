"""Network providers: the shared event loop, rate limits, retries, usage and prices.

Stage implementations that call a remote API build on these pieces; the OpenAI-compatible
ones (``transcribe=openai``, ``translate=openai``, ``tts=openai``) are the built-in users.
"""
