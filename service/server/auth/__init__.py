"""Authentication and tenancy: API keys (``keys``), per-key token buckets (``buckets``), and the
``Authenticator`` both transports call (``authenticator``); ``rest`` holds the HTTP side (the route
dependency, ``/metrics`` guard, CORS)."""
