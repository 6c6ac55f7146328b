"""The model and its predictions: the controller, the view, model versions."""
