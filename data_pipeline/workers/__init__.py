"""Running tasks on Celery workers: the Celery app (celery_app.py) and what a worker does with a
message (worker.py). See docs/scale-out.md."""
