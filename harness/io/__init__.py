"""Reading and writing: images, video, downloads and safe extraction, hashing, weight files."""
