"""Content serving: ``GET|HEAD /content/{remote_name}/{relative_path}``."""
