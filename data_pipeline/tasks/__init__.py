"""Tasks: their statuses, the service behind the task endpoints, the workflow runner, executor processes, the task directory, table lists and the status bodies the API returns."""
