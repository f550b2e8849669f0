"""Dataset generation (create-data), installed as diffmoog.data_gen."""
