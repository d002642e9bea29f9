"""Source kind `images`: camera files in drop folders (`connector`), each probed in a worker
process (`probe`: hash, decode, EXIF, features, content-addressed copy)."""
