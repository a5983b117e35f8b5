"""Small trained models shipped with breastseg (each with a model card beside it)."""
