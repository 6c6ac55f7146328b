"""Small pieces every feature may use: the task runner, words, labels, the wheel guard."""
