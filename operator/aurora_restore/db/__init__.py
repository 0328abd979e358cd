"""Engine-specific SQL for the restored databases (PostgreSQL, MySQL), always parameterised or safely quoted."""
