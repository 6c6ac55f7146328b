"""The model's jobs: loading and switching versions, prediction tasks, the fine-tuning child process."""
