"""``acgmake studio``: a local web page over the same stages and run folder as the CLI.

:mod:`acgmake.studio.security` says who may ask and which files may be touched,
:mod:`acgmake.studio.work` runs the stages in the run folder (one run at a time per folder),
:mod:`acgmake.studio.app` is the Starlette application that joins them, and ``static/`` holds the
page (no CDN: it works offline). Starlette and uvicorn are imported only here, never when the
``acgmake`` command starts.
"""
