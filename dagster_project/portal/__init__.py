"""The download page for marketers (make portal; docs/privacy.md): FastAPI and Jinja on 127.0.0.1."""
