"""Files in and out of the program: imports and exports."""
