"""What the Strata services share: settings, auth, problems, logging, metrics and health.

Framework-neutral: nothing here imports Flask or Sanic, so every service reuses it.
"""
