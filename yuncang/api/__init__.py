"""API routers. Every module here that defines ``router`` (a FastAPI ``APIRouter``) is mounted by
:func:`yuncang.app.create_app`, so each feature adds its own module without editing a shared list."""
