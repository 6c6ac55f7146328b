"""Fine-tuning: the training process, its window and dialog."""
