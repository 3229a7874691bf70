"""WSGI entry point: gunicorn imports this in each worker after the fork, so every worker loads its own model.

Settings come from JOBMAIL_SERVE_* environment variables (see `jobmail.server.ServerConfig`), e.g.
JOBMAIL_SERVE_MODEL=/app/model and JOBMAIL_SERVE_TOKENS_FILE=/run/secrets/jobmail_tokens.
"""
import logging
from jobmail.server import create_app

logging.basicConfig(level=logging.INFO, format='%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s')
app = create_app()
