"""Compare mode: the reference masks, the differences and the Dice sort."""
