"""Reading, validating, formulating and preparing the user's data."""
