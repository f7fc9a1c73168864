"""Files in and out: CSV imports, CSV/XLSX exports."""
