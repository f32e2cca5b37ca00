"""arq worker: jobs and cron."""
